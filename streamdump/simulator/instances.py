"""JSON that fits a schema, made up deterministically: the simulator's structured answers. Pure.

Covers what answer schemas use (OpenAI's strict subset and a little more): ``type`` (a list of
types takes the first that is not ``null``), ``properties`` (all of them) and ``required``,
``items``/``prefixItems`` with ``minItems``/``maxItems``, ``enum``, ``const``, ``anyOf``/``oneOf``
(the first branch), ``allOf`` (merged), ``$ref`` into the same schema, string ``format``,
``minLength``/``maxLength``, and number bounds.  ``pattern`` is not honoured.  Nesting deeper
than ``MAX_DEPTH`` (a recursive schema) takes ``null`` where the schema allows it, and no items.
"""

from __future__ import annotations

import math
import random
from typing import Any

from .script import WORDS

MAX_DEPTH = 6
FORMATS = {
    "date-time": "2024-05-17T09:30:00Z",
    "date": "2024-05-17",
    "time": "09:30:00Z",
    "duration": "P1DT2H",
    "email": "ada@example.com",
    "hostname": "example.com",
    "ipv4": "192.0.2.7",
    "ipv6": "2001:db8::7",
    "uuid": "3f2c6a4e-9b1d-4c8e-a5f7-2d6b8e1c0a93",
    "uri": "https://example.com/a",
}


def instance(schema: Any, rng: random.Random, *, root: Any = None, depth: int = 0) -> Any:
    """A value valid against ``schema`` (for the keywords above), drawn with ``rng``."""
    root = schema if root is None else root
    if not isinstance(schema, dict):
        return "value"  # true, or a schema we cannot read: anything goes
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return instance(_resolve(root, ref), rng, root=root, depth=depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return rng.choice(schema["enum"])
    for keyword in ("anyOf", "oneOf"):
        branches = schema.get(keyword)
        if isinstance(branches, list) and branches:
            if depth >= MAX_DEPTH and any(_allows_null(b) for b in branches):
                return None
            rest = {k: v for k, v in schema.items() if k != keyword}
            return instance({**rest, **branches[0]}, rng, root=root, depth=depth)
    if isinstance(schema.get("allOf"), list):
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            if isinstance(part, dict):
                merged = _merge(merged, part)
        return instance(merged, rng, root=root, depth=depth)
    kind = _type(schema, deep=depth >= MAX_DEPTH)
    if kind == "null":
        return None
    if kind == "object":
        return _object(schema, rng, root, depth)
    if kind == "array":
        return _array(schema, rng, root, depth)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind in ("integer", "number"):
        return _number(schema, rng, integer=kind == "integer")
    return _string(schema, rng)


def _type(schema: dict[str, Any], *, deep: bool) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        if deep and "null" in kind:
            return "null"
        kinds = [k for k in kind if k != "null"] or ["null"]
        return str(kinds[0])
    if isinstance(kind, str):
        return kind
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "string"


def _allows_null(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    kind = schema.get("type")
    return kind == "null" or (isinstance(kind, list) and "null" in kind)


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    merged = {**a, **b}
    if isinstance(a.get("properties"), dict) and isinstance(b.get("properties"), dict):
        merged["properties"] = {**a["properties"], **b["properties"]}
    if isinstance(a.get("required"), list) and isinstance(b.get("required"), list):
        merged["required"] = [*a["required"], *b["required"]]
    return merged


def _resolve(root: Any, ref: str) -> Any:
    """A ``#/a/b`` pointer into ``root`` (``#`` is the root itself); anything else is any value."""
    if not ref.startswith("#"):
        return True
    node = root
    for raw in [part for part in ref[1:].split("/") if part]:
        key = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return True
    return node


def _int(schema: dict[str, Any], key: str) -> int | None:
    value = schema.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _object(schema: dict[str, Any], rng: random.Random, root: Any, depth: int) -> dict[str, Any]:
    properties = schema.get("properties")
    named: dict[str, Any] = properties if isinstance(properties, dict) else {}
    value = {name: instance(sub, rng, root=root, depth=depth + 1) for name, sub in named.items()}
    extra = schema.get("additionalProperties")
    for name in schema.get("required") or []:
        if isinstance(name, str) and name not in value:
            value[name] = instance(extra if isinstance(extra, dict) else True, rng, root=root, depth=depth + 1)
    return value


def _array(schema: dict[str, Any], rng: random.Random, root: Any, depth: int) -> list[Any]:
    given = schema.get("prefixItems")
    prefix: list[Any] = given if isinstance(given, list) else []
    low = _int(schema, "minItems") or 0
    high = _int(schema, "maxItems")
    count = low if depth >= MAX_DEPTH else max(low, 2, len(prefix))
    if high is not None:
        count = min(count, high)
    items = schema.get("items", True)
    return [instance(prefix[i] if i < len(prefix) else items, rng, root=root, depth=depth + 1) for i in range(count)]


def _number(schema: dict[str, Any], rng: random.Random, *, integer: bool) -> int | float:
    low = _bound(schema, "minimum", "exclusiveMinimum", integer=integer, up=True)
    high = _bound(schema, "maximum", "exclusiveMaximum", integer=integer, up=False)
    step = schema.get("multipleOf")
    if low is None:
        low = min(0, high - 10) if high is not None else 0
    if high is None:
        high = low + 100
    if isinstance(step, (int, float)) and step > 0:
        first = math.ceil(low / step)
        last = math.floor(high / step)
        k = rng.randint(first, max(first, last))
        value = k * step
        return int(value) if integer else value
    if integer:
        return rng.randint(math.ceil(low), max(math.ceil(low), math.floor(high)))
    return round(low + (high - low) * rng.random(), 3) if high > low else low


def _bound(schema: dict[str, Any], inclusive: str, exclusive: str, *, integer: bool, up: bool) -> float | None:
    if isinstance(schema.get(exclusive), (int, float)):
        nudge = 1 if integer else 0.001
        return float(schema[exclusive] + (nudge if up else -nudge))
    value = schema.get(inclusive)
    return float(value) if isinstance(value, (int, float)) else None


def _string(schema: dict[str, Any], rng: random.Random) -> str:
    fmt = schema.get("format")
    text = FORMATS.get(fmt, "") if isinstance(fmt, str) else ""
    if not text:
        text = " ".join(rng.choice(WORDS) for _ in range(3))
    low = _int(schema, "minLength") or 0
    high = _int(schema, "maxLength")
    while len(text) < low:
        text += " " + rng.choice(WORDS)
    return text if high is None else text[:high]
