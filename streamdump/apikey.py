"""The API key: checked before anything is sent, and kept out of everything streamdump writes.

``check_key`` refuses a key that the HTTP layer would choke on (and quote in full in its error):
anything but printable ASCII.  ``check_env_name`` refuses an ``--api-key-env`` that is not a
variable name (the key itself pasted there).  Neither message shows the value.

``redact`` is the one function that takes the key out of what is recorded or printed: error
messages, server bodies and headers.  The run's key is set once for the run with ``redacting``
(a context variable: every task of the run sees it); a key shorter than ``MIN_SECRET_KEY``
characters (``EMPTY``, ``x`` for local servers) is not a secret and is left alone.
"""

from __future__ import annotations

import contextlib
import json
import re
import urllib.parse
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TypeVar, cast

from . import _constants as C
from .errors import SetupError

REDACTED = "[redacted]"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_T = TypeVar("_T")
_secret: ContextVar[tuple[str, ...] | None] = ContextVar("streamdump_secret", default=None)
_WORD = re.compile(r"\S+")


def check_env_name(name: str) -> None:
    """Refuse an ``--api-key-env`` that is no variable name, without echoing it (it may be the key)."""
    if not _ENV_NAME.fullmatch(name):
        raise SetupError(
            "--api-key-env takes the NAME of an environment variable (letters, digits and _, such as "
            "OPENAI_API_KEY), and what was given is not one (is it the key itself? it is not shown)"
        )


def check_key(key: str, *, env: str) -> None:
    """Refuse a key holding anything but printable ASCII (0x21-0x7E), saying what without showing it."""
    for position, char in enumerate(key, start=1):
        if "\x21" <= char <= "\x7e":
            continue
        if char in "\r\n":
            what = "a line break (a key read from a file with Windows line ends?)"
        elif char in " \t":
            what = "a space or a tab"
        elif char.isascii():
            what = "a control character"
        else:
            what = "a non-ASCII character"
        raise SetupError(
            f"the API key in {env} holds {what} at character {position} of {len(key)}; an API key is "
            "printable ASCII only: fix the variable (the key is not shown); nothing was sent"
        )


def _forms(key: str) -> tuple[str, ...]:
    """The key as it may appear in a message: as is, JSON-escaped, repr-escaped, URL-encoded."""
    quoted = (urllib.parse.quote(key, safe=""), urllib.parse.quote_plus(key))
    return tuple({key, json.dumps(key)[1:-1], repr(key)[1:-1], *quoted})


@contextlib.contextmanager
def redacting(key: str | None) -> Iterator[None]:
    """Within the block (and the tasks it starts), ``redact`` takes ``key`` out of what it is given."""
    token = _secret.set(_forms(key) if key and len(key) >= C.MIN_SECRET_KEY else None)
    try:
        yield
    finally:
        _secret.reset(token)


def redact(value: _T) -> _T:
    """``value`` with every word (run of non-space characters) that holds the key replaced by
    ``REDACTED`` (``Bearer sk-...``: the token; ``?key=sk-...&x``: the whole query): in a string,
    and in the keys and values of dicts and lists as deep as they go (a server's error body)."""
    forms = _secret.get()
    if forms is None:
        return value
    return cast(_T, _redact(value, forms))


def _redact(value: object, forms: tuple[str, ...]) -> object:
    if isinstance(value, str):
        if not any(form in value for form in forms):  # the common case: one pass per form
            return value
        return _WORD.sub(lambda word: REDACTED if any(f in word[0] for f in forms) else word[0], value)
    if isinstance(value, dict):
        return {_redact(k, forms): _redact(v, forms) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact(v, forms) for v in value)
    return value
