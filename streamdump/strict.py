"""OpenAI's strict mode for structured output: which JSON Schemas it accepts. Pure.

Strict mode (``"strict": true``) compiles the schema into a constraint on decoding, and refuses
with a 400 any schema outside its subset; streamdump asks for it only when ``strict_problem``
finds nothing.  The subset, from OpenAI's "Supported schemas": the root is an object (not
``anyOf``); every object says ``additionalProperties: false`` and lists every property in
``required``; only the keywords, types and string formats below; at most ``STRICT_MAX_DEPTH``
levels of nesting and ``STRICT_MAX_PROPERTIES`` properties in all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# Keywords OpenAI's strict mode accepts (its "Supported schemas"); anything else gets a 400.
STRICT_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "anyOf",
        "$ref",
        "$defs",
        "definitions",
        "description",
        "title",
        "pattern",
        "format",
        "multipleOf",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "minItems",
        "maxItems",
    }
)
STRICT_ROOT_KEYWORDS = frozenset({"$schema", "$id", "$comment"})
STRICT_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})
STRICT_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"})
STRICT_MAX_DEPTH = 10  # levels of object nesting
STRICT_MAX_PROPERTIES = 5000  # object properties in the whole schema
# Where subschemas sit: keyword -> how (one schema, a list of them, or a name -> schema map).
_ONE, _LIST, _MAP = "one", "list", "map"
_SUBSCHEMAS = {
    "items": _ONE,
    "additionalProperties": _ONE,
    "not": _ONE,
    "if": _ONE,
    "then": _ONE,
    "else": _ONE,
    "contains": _ONE,
    "propertyNames": _ONE,
    "unevaluatedItems": _ONE,
    "unevaluatedProperties": _ONE,
    "anyOf": _LIST,
    "allOf": _LIST,
    "oneOf": _LIST,
    "prefixItems": _LIST,
    "properties": _MAP,
    "patternProperties": _MAP,
    "$defs": _MAP,
    "definitions": _MAP,
    "dependentSchemas": _MAP,
}


def walk(node: dict[str, Any], where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema object in ``node`` (itself included), with its JSON path."""
    yield where, node
    for keyword, how in _SUBSCHEMAS.items():
        value = node.get(keyword)
        if how == _ONE and isinstance(value, dict):
            yield from walk(value, f"{where}.{keyword}")
        elif how == _LIST and isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    yield from walk(item, f"{where}.{keyword}[{index}]")
        elif how == _MAP and isinstance(value, dict):
            for name, item in value.items():
                if isinstance(item, dict):
                    yield from walk(item, f"{where}.{keyword}.{name}")


def strict_problem(schema: dict[str, Any]) -> str | None:
    """Why OpenAI's strict mode would refuse ``schema`` (the first reason found, with its JSON path), or ``None``."""
    if schema.get("type") != "object" or "anyOf" in schema:
        return "$: the root must be an object schema (type: object, not anyOf)"
    properties = 0
    for where, node in walk(schema, "$"):
        extra = set(node) - STRICT_KEYWORDS - (STRICT_ROOT_KEYWORDS if where == "$" else set())
        if extra:
            return f"{where}: {sorted(extra)[0]} is not supported in strict mode"
        types = node.get("type")
        for name in types if isinstance(types, list) else [types] if types is not None else []:
            if name not in STRICT_TYPES:
                return f"{where}: type {name!r} is not supported in strict mode"
        if "format" in node and node["format"] not in STRICT_FORMATS:
            return f"{where}: format {node['format']!r} is not supported in strict mode"
        is_object = types == "object" or (isinstance(types, list) and "object" in types) or "properties" in node
        if is_object:
            if node.get("additionalProperties") is not False:
                return f"{where}: an object needs additionalProperties: false in strict mode"
            names = node.get("properties") or {}
            missing = [name for name in names if name not in (node.get("required") or [])]
            if missing:
                return f"{where}: every property must be required in strict mode ({missing[0]!r} is not)"
            properties += len(names)
        if _depth(where) > STRICT_MAX_DEPTH:
            return f"{where}: more than {STRICT_MAX_DEPTH} levels of nesting"
    if properties > STRICT_MAX_PROPERTIES:
        return f"$: more than {STRICT_MAX_PROPERTIES} properties in all"
    return None


def _depth(where: str) -> int:
    """Levels of nesting of the schema at JSON path ``where`` (properties and items are levels)."""
    return where.count(".properties.") + where.count(".items")
