"""The simulator's JSON answers: fitting the request's schema, and invalid or cut off on demand (pure)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from streamdump.simulator.instances import instance
from streamdump.simulator.replies import ANY_OBJECT, JSON_PIECE, Style, reply
from streamdump.simulator.script import parse_fault

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 20},
        "age": {"type": "integer", "minimum": 18, "exclusiveMaximum": 20},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 3, "maxItems": 3},
        "email": {"type": ["string", "null"], "format": "email"},
    },
    "required": ["name", "age", "tags", "email"],
    "additionalProperties": False,
}
TREE = {
    "$defs": {
        "node": {
            "type": "object",
            "properties": {"label": {"const": "n"}, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
            "required": ["label", "children"],
        }
    },
    "$ref": "#/$defs/node",
}


@pytest.mark.parametrize(
    "schema",
    [
        PERSON,
        TREE,
        ANY_OBJECT,
        {},
        {"type": "object"},
        {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "boolean"}], "items": False},
        {"type": "array", "maxItems": 1, "items": {"type": "string", "maxLength": 2}},
        {"type": "number", "minimum": 0.5, "maximum": 0.75},
        {"type": "number", "multipleOf": 0.25, "minimum": 1, "maximum": 2},
        {"type": "integer", "multipleOf": 7, "minimum": 10, "maximum": 20},
        {"type": "integer", "maximum": -5},
        {"type": "integer", "exclusiveMinimum": 3, "exclusiveMaximum": 5},
        {"type": ["null", "boolean"]},
        {"type": "null"},
        {"enum": ["x", 3, None]},
        {"anyOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}, {"type": "null"}]},
        {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer"}]},
        {"allOf": [{"properties": {"a": {"type": "integer"}}, "required": ["a"]}, {"required": ["b"]}]},
        {"type": "object", "required": ["extra"], "additionalProperties": {"type": "integer"}},
        {"type": "object", "properties": {"self": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}}, "required": ["self"]},
        {"type": "string", "format": "uuid"},
        {"type": "string", "format": "no-such-format", "minLength": 40},
    ],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_made_up_json_fits_its_schema(schema: dict[str, Any], seed: int) -> None:
    value = instance(schema, random.Random(seed))
    errors = [error.message for error in Draft202012Validator(schema).iter_errors(value)]
    assert errors == [], value
    json.dumps(value, allow_nan=False)  # real JSON


USER = [{"role": "user", "content": "extract"}]
CHAT_SCHEMA = {"response_format": {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}}}
RESPONSES_SCHEMA = {"text": {"format": {"type": "json_schema", "name": "person", "schema": PERSON, "strict": True}}}


def answer(body: dict[str, Any], style: Style | None = None) -> tuple[str, str]:
    (choice,) = reply("extract", {"messages": USER, **body}, style or Style())
    return "".join(choice.content), choice.finish


@pytest.mark.parametrize("body", [CHAT_SCHEMA, RESPONSES_SCHEMA])
def test_a_request_with_a_schema_gets_json_that_fits_it(body: dict[str, Any]) -> None:
    text, finish = answer(body)
    assert finish == "stop"
    assert list(Draft202012Validator(PERSON).iter_errors(json.loads(text))) == []


def test_a_json_answer_streams_in_small_pieces() -> None:
    (choice,) = reply("extract", {"messages": USER, **CHAT_SCHEMA}, Style())
    assert len(choice.deltas) > 3
    assert all(len(delta["content"]) <= JSON_PIECE for delta in choice.deltas)


def test_json_object_gets_an_object() -> None:
    text, _ = answer({"response_format": {"type": "json_object"}})
    assert set(json.loads(text)) == {"answer"}


def test_the_same_request_gets_the_same_json_and_each_choice_its_own() -> None:
    assert answer(CHAT_SCHEMA) == answer(CHAT_SCHEMA)
    choices = reply("extract", {"messages": USER, "n": 2, **CHAT_SCHEMA}, Style())
    texts = ["".join(choice.content) for choice in choices]
    assert texts[0] != texts[1]
    assert all(list(Draft202012Validator(PERSON).iter_errors(json.loads(t))) == [] for t in texts)


@pytest.mark.parametrize("limit", [{"max_tokens": 2}, {"max_completion_tokens": 2}, {"max_output_tokens": 2}])
def test_an_output_limit_cuts_json_off(limit: dict[str, int]) -> None:
    text, finish = answer({**CHAT_SCHEMA, **limit})
    assert finish == "length"
    assert len(text) == 2 * JSON_PIECE
    with pytest.raises(ValueError):
        json.loads(text)


@pytest.mark.parametrize(
    ("fault", "body", "says"),
    [
        ("invalid-json", CHAT_SCHEMA, "not JSON"),
        ("invalid-json", {}, "not JSON"),  # JSON asked for or not
        ("off-schema", CHAT_SCHEMA, '"off-schema"'),
        ("json", {}, "an object with an answer"),
        ("json", CHAT_SCHEMA, "valid"),
    ],
)
def test_json_faults(fault: str, body: dict[str, Any], says: str) -> None:
    rule = parse_fault(fault)
    text, finish = answer(body, Style(fault=rule.kind))
    assert finish == "stop"
    if says == "not JSON":
        with pytest.raises(ValueError):
            json.loads(text)
        assert json.loads(text + "}")  # one character short of JSON
    elif says == "valid":
        assert list(Draft202012Validator(PERSON).iter_errors(json.loads(text))) == []
    elif says == "an object with an answer":
        assert set(json.loads(text)) == {"answer"}
    else:
        assert text == says


def test_a_plain_request_still_gets_prose() -> None:
    text, _ = answer({})
    with pytest.raises(ValueError):
        json.loads(text)
