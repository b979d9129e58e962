"""One line of input as JSON, refusing whatever a request could not send as valid JSON. Pure.

``json.loads`` takes ``NaN``, ``Infinity`` and ``1e400`` (as infinity), lone surrogate escapes, and
raises ``RecursionError`` or ``ValueError`` (not ``JSONDecodeError``) on nesting too deep and on
integers too long to read: a prompts file must not crash the check with a traceback, nor get such
values past it.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

from .errors import LineError

# Deeper JSON is refused: far beyond any real request, and well inside what the parser, the hash and
# the client's own copies of the body can take without hitting the recursion limit.
MAX_DEPTH = 100

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _no_constant(name: str) -> float:
    raise LineError(f"{name} is not JSON (a request cannot send it)")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise LineError(f"the number {text[:40]} is out of range for a float (a request cannot send it)")
    return value


def _depth(obj: Any) -> int:
    """How deep lists and objects nest in ``obj`` (without recursion)."""
    deepest = 0
    stack = [(obj, 1)]
    while stack:
        value, level = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is not None:
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in children)
    return deepest


def load_line(text: str) -> Any:
    """``json.loads`` for one line of input, refusing whatever could not be sent as valid JSON: NaN,
    Infinity, floats out of range, integers too long to read, lone surrogates, nesting too deep for
    the parser. Raises LineError, never anything else."""
    try:
        obj = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise LineError(f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    except LineError:
        raise
    except RecursionError:
        raise LineError(f"invalid JSON: nested more than {MAX_DEPTH} levels deep") from None
    except ValueError:  # int() refuses more than sys.get_int_max_str_digits() digits
        raise LineError(f"an integer has more than {sys.get_int_max_str_digits()} digits") from None
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(obj) > MAX_DEPTH:
        raise LineError(f"invalid JSON: nested more than {MAX_DEPTH} levels deep")
    if _SURROGATE_ESCAPE.search(text):  # the only way a lone surrogate gets in: an escape
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise LineError("a string holds a lone surrogate (a \\ud800-\\udfff escape without its pair)") from None
    return obj
