"""JSON Schema for answers: the schema file, OpenAI's strict subset, request fragments, answer checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streamdump.errors import SchemaFileError, SetupError
from streamdump.jobs import Defaults, defaults_from_options, defaults_options, parse_line
from streamdump.schema import (
    JSON_OBJECT,
    AnswerCheck,
    AnswerSchema,
    Checks,
    ChoiceAnswer,
    first_invalid,
    load_schema,
    request_fragment,
    requested_schema,
    schema_problem,
)
from streamdump.strict import strict_problem

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "age", "tags"],
    "additionalProperties": False,
}


def obj(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A strict-ready object schema with these properties (all required)."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
        **extra,
    }


# -- the schema file ------------------------------------------------------------------------
def test_a_schema_file_is_named_after_its_stem_and_strict_when_it_fits(tmp_path: Path) -> None:
    path = tmp_path / "person.v2.json"
    path.write_text(json.dumps(PERSON))
    answer = load_schema(path)
    assert answer == AnswerSchema(name="person_v2", schema=PERSON, strict=True)


def test_a_schema_outside_the_strict_subset_is_loaded_with_strict_off(tmp_path: Path) -> None:
    path = tmp_path / "loose.json"
    path.write_text(json.dumps({"type": "object", "properties": {"a": {"type": "string"}}}))
    assert load_schema(path).strict is False


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "not JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
        ('{"type": NaN}', "not JSON: NaN is not JSON"),
        ("[1, 2]", "a schema for answers must be a JSON object"),
        ("true", "a schema for answers must be a JSON object"),
        ('{"type": "objectx"}', "at $.type: 'objectx' is not valid under any of the given schemas"),
        ('{"type": "object", "required": "name"}', "at $.required: 'name' is not of type 'array'"),
        ('{"properties": {"a": {"minimum": "zero"}}}', "at $.properties.a.minimum: 'zero' is not of type 'number'"),
        ('{"$ref": "https://example.com/s.json"}', "$ref 'https://example.com/s.json' does not point into this schema"),
        (
            '{"items": {"$ref": "#/$defs/missing"}}',
            "at $.items: $ref '#/$defs/missing' does not point into this schema",
        ),
    ],
)
def test_a_file_that_is_not_a_schema_is_a_setup_error_saying_why(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(SchemaFileError) as caught:
        load_schema(path)
    assert isinstance(caught.value, SetupError)  # exit 2, nothing sent
    assert str(caught.value).startswith(f"--json-schema {path}: ")
    assert says in str(caught.value)


def test_a_missing_schema_file_is_a_setup_error(tmp_path: Path) -> None:
    with pytest.raises(SchemaFileError, match="cannot read it"):
        load_schema(tmp_path / "nowhere.json")


@pytest.mark.parametrize(
    "schema",
    [
        {},
        PERSON,
        {"$defs": {"n": {"type": "integer"}}, "type": "object", "properties": {"x": {"$ref": "#/$defs/n"}}},
        {"type": "object", "properties": {"child": {"$ref": "#"}}},  # recursive
        {"anyOf": [{"type": "string"}, {"type": "null"}]},
        {
            "$id": "https://example.com/tree.json",
            "$defs": {"leaf": {"type": "string"}},
            "properties": {"a": {"$ref": "https://example.com/tree.json#/$defs/leaf"}, "b": {"$ref": "#/$defs/leaf"}},
        },
    ],
)
def test_usable_schemas(schema: dict[str, Any]) -> None:
    assert schema_problem(schema) is None


# -- OpenAI's strict subset -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        (PERSON, None),
        (obj({}), None),
        (obj({"a": {"type": ["string", "null"]}}), None),
        (obj({"a": {"anyOf": [obj({"x": {"type": "number"}}), {"type": "null"}]}}), None),
        (obj({"a": {"$ref": "#/$defs/item"}}, **{"$defs": {"item": obj({"v": {"enum": [1, 2]}})}}), None),
        (obj({"a": {"type": "string", "format": "date-time", "pattern": "^2"}}), None),
        (obj({"a": {"type": "array", "items": obj({"b": {"const": 1}}), "minItems": 1, "maxItems": 3}}), None),
        ({**obj({"a": {"type": "number"}}), "$schema": "https://json-schema.org/draft/2020-12/schema"}, None),
        ({"type": "array", "items": {"type": "string"}}, "$: the root must be an object schema"),
        ({"anyOf": [obj({}), obj({"a": {"type": "string"}})], "type": "object"}, "$: the root must be an object"),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            "$: an object needs additionalProperties: false",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False},
            "$: every property must be required in strict mode ('a' is not)",
        ),
        (
            obj({"inner": {"type": "object", "properties": {"b": {"type": "string"}}, "required": ["b"]}}),
            "$.properties.inner: an object needs additionalProperties: false",
        ),
        (
            obj({"list": {"type": "array", "items": {"type": "object", "properties": {"b": {"type": "string"}}}}}),
            "$.properties.list.items: an object needs additionalProperties: false",
        ),
        (obj({"a": {"type": "string", "minLength": 1}}), "$.properties.a: minLength is not supported in strict mode"),
        (obj({"a": {"allOf": [{"type": "string"}]}}), "$.properties.a: allOf is not supported"),
        (obj({"a": {"oneOf": [{"type": "string"}]}}), "$.properties.a: oneOf is not supported"),
        (obj({"a": {"not": {"type": "string"}}}), "$.properties.a: not is not supported"),
        (obj({"a": {"type": "string", "format": "uri"}}), "$.properties.a: format 'uri' is not supported"),
        (obj({"a": {"type": "array", "uniqueItems": True}}), "$.properties.a: uniqueItems is not supported"),
        (obj({"a": {"type": "string", "default": "x"}}), "$.properties.a: default is not supported"),
        (obj({}, patternProperties={"^x": {"type": "string"}}), "$: patternProperties is not supported"),
        (
            obj({"a": {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}}}),
            "needs additionalProperties: false",
        ),
        ({**obj({}), "$id": "x"}, None),
        (obj({"a": {**obj({}), "$id": "x"}}), "$.properties.a: $id is not supported"),
    ],
)
def test_strict_subset(schema: dict[str, Any], problem: str | None) -> None:
    found = strict_problem(schema)
    if problem is None:
        assert found is None
    else:
        assert found is not None, schema
        assert found.startswith(problem) or problem in found, found


def test_strict_subset_limits_nesting() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(10):
        schema = obj({"x": schema})
    assert strict_problem(schema) is None
    too_deep = obj({"x": schema})
    assert "more than 10 levels of nesting" in (strict_problem(too_deep) or "")


def test_strict_subset_limits_properties() -> None:
    wide = obj({f"p{i}": obj({f"q{j}": {"type": "string"} for j in range(99)}) for i in range(51)})
    assert strict_problem(wide) == "$: more than 5000 properties in all"


# -- what each format sends -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("api", "fragment"),
    [
        (
            "chat",
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "person", "schema": PERSON, "strict": True},
                }
            },
        ),
        (
            "responses",
            {"text": {"format": {"type": "json_schema", "name": "person", "schema": PERSON, "strict": True}}},
        ),
        ("completions", {}),
    ],
)
def test_request_fragment_per_format(api: str, fragment: dict[str, Any]) -> None:
    assert request_fragment(api, AnswerSchema("person", PERSON, True)) == fragment


def test_request_fragment_says_strict_false_for_a_loose_schema() -> None:
    fragment = request_fragment("chat", AnswerSchema("loose", {"type": "object"}, False))
    assert fragment["response_format"]["json_schema"]["strict"] is False


def test_request_fragment_refuses_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown api"):
        request_fragment("embeddings", AnswerSchema("x", {}, False))


# -- what a request asks for itself ---------------------------------------------------------
CHAT_SCHEMA = {"response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON}}}
RESPONSES_SCHEMA = {"text": {"format": {"type": "json_schema", "name": "p", "schema": PERSON, "strict": True}}}


@pytest.mark.parametrize(
    ("api", "params", "wanted"),
    [
        ("chat", {}, None),
        ("chat", {"temperature": 0}, None),
        ("chat", CHAT_SCHEMA, PERSON),
        ("chat", {"response_format": {"type": "json_object"}}, JSON_OBJECT),
        ("chat", {"response_format": {"type": "text"}}, None),
        ("chat", {"response_format": {"type": "json_schema", "json_schema": {"name": "p"}}}, None),
        ("chat", {"response_format": "json"}, None),
        ("chat", RESPONSES_SCHEMA, None),  # chat does not read text.format
        ("completions", CHAT_SCHEMA, PERSON),  # vLLM takes response_format on completions
        ("responses", RESPONSES_SCHEMA, PERSON),
        ("responses", {"text": {"format": {"type": "json_object"}}}, JSON_OBJECT),
        ("responses", {"text": {"format": {"type": "text"}, "verbosity": "low"}}, None),
        ("responses", {"text": {"verbosity": "low"}}, None),
        ("responses", {"text": "plain"}, None),
        ("responses", CHAT_SCHEMA, None),  # the Responses API does not read response_format
    ],
)
def test_requested_schema(api: str, params: dict[str, Any], wanted: object) -> None:
    assert requested_schema(api, params) == wanted


def test_checks_take_the_request_own_schema_first_then_the_run_default() -> None:
    checks = Checks()
    default = AnswerSchema("d", {"type": "object", "required": ["d"]}, False)
    assert checks.for_request("chat", {}, None) is None
    assert checks.for_request("chat", {"response_format": {"type": "text"}}, default) is None  # asks for text
    assert checks.for_request("chat", CHAT_SCHEMA, default) == AnswerCheck.of(PERSON)
    assert checks.for_request("completions", {}, default) == AnswerCheck.of(default.schema)
    own = checks.for_request("chat", {"response_format": {"type": "json_object"}}, default)
    assert own is not None and own.schema is None


def test_checks_build_each_schema_once() -> None:
    checks = Checks(limit=2)
    first = checks.of(PERSON)
    assert checks.of(json.loads(json.dumps(PERSON))) is first  # an equal schema from another line
    checks.of({"type": "string"})
    checks.of({"type": "number"})
    assert checks.of(PERSON) is not first  # the oldest was dropped at the limit


# -- checking answers -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("schema", "text", "problem"),
    [
        (PERSON, '{"name": "Ada", "age": 36, "tags": []}', None),
        (PERSON, '  {"name": "Ada", "age": 36, "tags": ["x"]}\n', None),
        (PERSON, '{"name": "Ada", "age": 36}', "$: 'tags' is a required property"),
        (PERSON, '{"name": "Ada", "age": -1, "tags": []}', "$.age: -1 is less than the minimum of 0"),
        (PERSON, '{"name": "Ada", "age": 36, "tags": [1]}', "$.tags[0]: 1 is not of type 'string'"),
        (PERSON, '{"name": "Ada", "age": 36, "tags": [], "x": 1}', "$: Additional properties are not allowed"),
        (PERSON, '{"name": "Ada", "age": 36.5, "tags": []}', "$.age: 36.5 is not of type 'integer'"),
        (PERSON, '{"name": "Ada", "age": 3', "the answer is not JSON: Expecting ',' delimiter at line 1 column 25"),
        (PERSON, "", "the answer is not JSON: Expecting value at line 1 column 1"),
        (PERSON, '```json\n{"name": "Ada"}\n```', "the answer is not JSON: Expecting value at line 1 column 1"),
        (PERSON, '{"name": "Ada", "age": NaN, "tags": []}', "the answer is not JSON: NaN is not JSON"),
        (PERSON, '{"a": 1} {"b": 2}', "the answer is not JSON: Extra data at line 1 column 10"),
        (None, '{"anything": [1, 2]}', None),
        (None, "{}", None),
        (None, "[1, 2]", "$: the answer is a list, not a JSON object"),
        (None, '"text"', "$: the answer is a string, not a JSON object"),
        (None, "3", "$: the answer is a number, not a JSON object"),
        (None, "null", "$: the answer is null, not a JSON object"),
        (None, "true", "$: the answer is a boolean, not a JSON object"),
        (None, "not json", "the answer is not JSON"),
        ({"type": "objectx"}, "{}", "the request's schema is not a JSON Schema (Draft 2020-12): at $.type"),
        ({"type": "string", "format": "email"}, '"not an email"', None),  # format is an annotation
    ],
)
def test_answer_check(schema: dict[str, Any] | None, text: str, problem: str | None) -> None:
    found = AnswerCheck.of(schema).problem(text)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem), found


@pytest.mark.parametrize(
    ("answers", "invalid"),
    [
        ([ChoiceAnswer(0, '{"a": 1}', "stop")], None),
        ([ChoiceAnswer(0, "{", "stop")], (0, "the answer is not JSON")),
        ([ChoiceAnswer(0, '{"a": 1', "length")], (0, "the answer is not JSON: Expecting ',' delimiter")),
        ([ChoiceAnswer(0, '{"a": 1}', "length")], (0, "cut off by finish_reason length")),
        ([ChoiceAnswer(0, "I can't help", "stop", checked=False)], None),  # a refusal, or tool calls
        ([ChoiceAnswer(0, "{}", "stop"), ChoiceAnswer(1, "[]", "stop")], (1, "$: the answer is a list")),
        ([ChoiceAnswer(0, "x", "stop"), ChoiceAnswer(1, "[]", "stop")], (0, "the answer is not JSON")),
        ([ChoiceAnswer(0, "", "tool_calls", checked=False), ChoiceAnswer(1, "{}", "stop")], None),
    ],
)
def test_first_invalid_answer(answers: list[ChoiceAnswer], invalid: tuple[int, str] | None) -> None:
    found = first_invalid(AnswerCheck.of(None), answers)
    if invalid is None:
        assert found is None
    else:
        assert found is not None and found[0] == invalid[0] and found[1].startswith(invalid[1]), found


def test_a_length_cut_says_so_beside_the_parse_error() -> None:
    found = first_invalid(AnswerCheck.of(PERSON), [ChoiceAnswer(0, '{"name": "A', "length")])
    assert found is not None and found[1].endswith("(cut off: finish_reason length)")


# -- the schema in each job's request -------------------------------------------------------
def job_of(obj: dict[str, Any], api: str = "chat") -> Any:
    defaults = Defaults(model="m", api=api, answer_schema=AnswerSchema("person", PERSON, True))
    return parse_line(json.dumps(obj), 1, defaults)


@pytest.mark.parametrize(
    ("api", "fields"),
    [
        (
            "chat",
            {"response_format": request_fragment("chat", AnswerSchema("person", PERSON, True))["response_format"]},
        ),
        ("responses", {"text": request_fragment("responses", AnswerSchema("person", PERSON, True))["text"]}),
        ("completions", {}),
    ],
)
def test_each_format_asks_for_the_schema_file_its_own_way(api: str, fields: dict[str, Any]) -> None:
    job = job_of({"id": "a", "prompt": "who"}, api)
    assert {k: v for k, v in job.body().items() if k in ("response_format", "text")} == fields
    check = Checks().for_request(job.api, job.params, AnswerSchema("person", PERSON, True))
    assert check is not None and check.schema == PERSON  # completions: only checked


def test_a_batch_file_mixing_formats_gets_each_its_own_fragment() -> None:
    chat = job_of(
        {"custom_id": "c", "url": "/v1/chat/completions", "body": {"messages": [{"role": "user", "content": "x"}]}}
    )
    responses = job_of({"custom_id": "r", "url": "/v1/responses", "body": {"input": "x"}})
    assert chat.params["response_format"]["type"] == "json_schema" and "text" not in chat.params
    assert responses.params["text"]["format"]["type"] == "json_schema" and "response_format" not in responses.params


def test_a_responses_line_keeps_its_other_text_settings() -> None:
    job = job_of({"prompt": "who", "params": {"text": {"verbosity": "low"}}}, "responses")
    assert job.params["text"]["verbosity"] == "low"
    assert job.params["text"]["format"]["name"] == "person"


@pytest.mark.parametrize(
    ("api", "params"),
    [
        ("chat", {"response_format": {"type": "json_object"}}),
        ("chat", {"response_format": {"type": "text"}}),
        ("responses", {"text": {"format": {"type": "json_object"}}}),
    ],
)
def test_a_line_naming_its_own_output_format_keeps_it(api: str, params: dict[str, Any]) -> None:
    assert job_of({"prompt": "who", "params": params}, api).params == params


def test_the_schema_file_enters_the_request_hash() -> None:
    plain = parse_line(json.dumps({"prompt": "who"}), 1, Defaults(model="m"))
    assert job_of({"prompt": "who"}).request_hash != plain.request_hash


def test_the_run_options_carry_the_schema_for_status() -> None:
    defaults = Defaults(model="m", answer_schema=AnswerSchema("person", PERSON, False))
    options = json.loads(json.dumps(defaults_options(defaults)))
    assert defaults_from_options(options, default_model="x").answer_schema == defaults.answer_schema
    assert defaults_from_options({"model": "m"}, default_model="x").answer_schema is None  # older summaries
