"""JSON Schema for answers: load the schema file, ask for it in each wire format's way, check answers.

Pure apart from ``load_schema`` reading its file.  The checking is jsonschema's (Draft 2020-12);
this module only decides what to check against and how to say what is wrong:

- ``load_schema(path)``: the ``--json-schema`` file, checked against the Draft 2020-12 meta-schema
  (and every ``$ref`` in it resolved within the file: nothing is ever fetched);
- ``strict.strict_problem(schema)`` says whether OpenAI's strict mode takes it, so that
  ``strict: true`` is sent only when the server will;
- ``request_fragment(api, schema)``: the parameters that ask for it (chat: ``response_format``;
  responses: ``text.format``; completions: nothing);
- ``requested_check(api, params)``: the check a request's own parameters ask for (a
  ``json_schema`` format, or ``json_object``), if any;
- ``AnswerCheck.problem(text)``: ``None`` for a valid answer, else the first error, with its
  JSON path.

``format`` stays an annotation, as Draft 2020-12 has it by default: whether a format is checked
would otherwise depend on which optional packages happen to be installed.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .errors import SchemaFileError
from .strict import strict_problem, walk

if TYPE_CHECKING:  # jsonschema is imported when a schema is first checked (it takes 0.1 s)
    from jsonschema import Draft202012Validator


@dataclass(frozen=True, slots=True)
class AnswerSchema:
    """A schema to ask for and check answers against, as given by ``--json-schema``."""

    name: str
    schema: dict[str, Any]
    strict: bool


def schema_options(answer: AnswerSchema) -> dict[str, Any]:
    """How summary.json records the ``--json-schema`` a run asked with; ``schema_from_options`` reads it."""
    return {"name": answer.name, "schema": answer.schema, "strict": answer.strict}


def schema_from_options(options: object) -> AnswerSchema | None:
    if not isinstance(options, dict) or not isinstance(options.get("schema"), dict):
        return None
    return AnswerSchema(str(options.get("name") or "answer"), options["schema"], options.get("strict") is True)


@dataclass(frozen=True, slots=True)
class AnswerCheck:
    """What a complete answer must be: valid against ``schema``, or (``schema is None``) a JSON object."""

    schema: dict[str, Any] | None
    _validator: Draft202012Validator | None = field(default=None, compare=False, repr=False)
    unusable: str | None = None  # what is wrong with ``schema`` itself, when it is not a schema

    @classmethod
    def of(cls, schema: dict[str, Any] | None) -> AnswerCheck:
        from jsonschema import Draft202012Validator

        if schema is None:
            return cls(None)
        unusable = schema_problem(schema)
        if unusable is not None:
            return cls(schema, unusable=unusable)
        return cls(schema, Draft202012Validator(schema))

    def problem(self, text: str) -> str | None:
        """``None`` when ``text`` is a valid answer; otherwise what is wrong, starting with the JSON path."""
        if self.unusable is not None:
            return f"the request's schema is not a JSON Schema (Draft 2020-12): {self.unusable}"
        from jsonschema.exceptions import best_match

        try:
            value = json.loads(text, parse_constant=_no_constant)
        except ValueError as exc:
            return f"the answer is not JSON: {_json_error(exc)}"
        if self.schema is None or self._validator is None:
            if not isinstance(value, dict):
                return f"$: the answer is {_kind(value)}, not a JSON object"
            return None
        error = best_match(self._validator.iter_errors(value))
        if error is None:
            return None
        return f"{error.json_path}: {error.message}"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_error(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return str(exc)


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


# -- the schema file ------------------------------------------------------------------------
def load_schema(path: Path) -> AnswerSchema:
    """Read and check a ``--json-schema`` file. Raises SchemaFileError saying what is wrong."""
    where = f"--json-schema {path}"
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaFileError(f"{where}: cannot read it: {exc}") from None
    try:
        schema = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        raise SchemaFileError(f"{where}: not JSON: {_json_error(exc)}") from None
    problem = schema_problem(schema)
    if problem is not None:
        raise SchemaFileError(f"{where}: not a JSON Schema (Draft 2020-12): {problem}")
    name = "".join(c if c.isascii() and (c.isalnum() or c in "_-") else "_" for c in path.stem)[:64] or "answer"
    return AnswerSchema(name=name, schema=schema, strict=strict_problem(schema) is None)


def schema_problem(schema: object) -> str | None:
    """What keeps ``schema`` from being a usable Draft 2020-12 schema, or ``None``."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match
    from referencing import Registry
    from referencing.exceptions import Unresolvable
    from referencing.jsonschema import DRAFT202012

    if not isinstance(schema, dict):
        return "a schema for answers must be a JSON object"
    error = best_match(Draft202012Validator(Draft202012Validator.META_SCHEMA).iter_errors(schema))
    if error is not None:
        return f"at {error.json_path}: {error.message}"
    resolver = Registry().with_resource("", DRAFT202012.create_resource(schema)).resolver()
    for where, node in walk(schema, "$"):
        ref = node.get("$ref")
        if isinstance(ref, str):
            try:
                resolver.lookup(ref)
            except Unresolvable:
                return f"at {where}: $ref {ref!r} does not point into this schema (nothing is fetched)"
    return None


def schema_note(answer: AnswerSchema) -> str | None:
    """What to tell the user about a schema sent without ``strict`` (``None`` when it is strict)."""
    if answer.strict:
        return None
    return (
        "streamdump: --json-schema: sent with strict: false, as OpenAI's strict mode would refuse the schema "
        f"({strict_problem(answer.schema)}); every answer is still checked"
    )


# -- requests -------------------------------------------------------------------------------
def request_fragment(api: str, answer: AnswerSchema) -> dict[str, Any]:
    """The request parameters that ask for ``answer`` in the format ``api``."""
    if api == "chat":
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": answer.name, "schema": answer.schema, "strict": answer.strict},
            }
        }
    if api == "responses":
        return {
            "text": {
                "format": {"type": "json_schema", "name": answer.name, "schema": answer.schema, "strict": answer.strict}
            }
        }
    if api == "completions":
        return {}  # text completions have no standard way to ask: the answer is only checked
    raise ValueError(f"unknown api {api!r}")


def with_schema(api: str, params: dict[str, Any], answer: AnswerSchema) -> dict[str, Any]:
    """``params`` asking for ``answer`` in the format ``api``, unless they name an output format of their own.

    A Responses request's other ``text`` settings (``verbosity``) are kept beside the format.
    """
    if requested_format(api, params) is not None:
        return params
    fragment = request_fragment(api, answer)
    text = params.get("text")
    if "text" in fragment and isinstance(text, dict):
        return {**params, "text": {**text, **fragment["text"]}}
    return {**params, **fragment}


def request_schema_problem(api: str, params: dict[str, Any], answer: AnswerSchema | None = None) -> str | None:
    """What is wrong with the schema a request's own parameters carry, if it is not a usable schema.

    ``answer``'s schema (the ``--json-schema`` file, checked already) is not checked again.
    """
    wanted = requested_schema(api, params)
    if not isinstance(wanted, dict) or (answer is not None and wanted is answer.schema):
        return None
    return _cached_problem(json.dumps(wanted, sort_keys=True, ensure_ascii=False))


@functools.lru_cache(maxsize=64)
def _cached_problem(canonical: str) -> str | None:
    return schema_problem(json.loads(canonical))


def requested_format(api: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """The output format a request's parameters ask for, in the shape chat's ``response_format`` has.

    Responses carry it as ``text.format`` with the schema's fields at the top; it is returned
    with them under ``json_schema``, as chat has them, so that callers read one shape.
    """
    if api == "responses":
        text = params.get("text")
        fmt = text.get("format") if isinstance(text, dict) else None
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            return {"type": "json_schema", "json_schema": {k: v for k, v in fmt.items() if k != "type"}}
        return fmt if isinstance(fmt, dict) else None
    fmt = params.get("response_format")
    return fmt if isinstance(fmt, dict) else None


JSON_OBJECT: Literal["json_object"] = "json_object"


def requested_schema(api: str, params: dict[str, Any]) -> dict[str, Any] | Literal["json_object"] | None:
    """What a request asks its answers to be: valid against a schema, ``JSON_OBJECT``, or nothing (``None``).

    A ``json_schema`` format without a schema object in it asks for nothing that can be checked.
    """
    fmt = requested_format(api, params)
    if fmt is None:
        return None
    if fmt.get("type") == JSON_OBJECT:
        return JSON_OBJECT
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return schema if isinstance(schema, dict) else None
    return None


class Checks:
    """``AnswerCheck``s by schema, built once each (a run's lines mostly share one schema)."""

    def __init__(self, limit: int = 64) -> None:
        self._limit = limit
        self._by_key: dict[str, AnswerCheck] = {}
        self._object = AnswerCheck.of(None)

    def for_request(self, api: str, params: dict[str, Any], default: AnswerSchema | None = None) -> AnswerCheck | None:
        """The check for a request's answers: what its own output format asks for, else ``default``.

        ``default`` (the ``--json-schema`` file) matters where the request names no output format:
        text completions, where nothing is sent. A request that asks for plain text is not checked.
        """
        if requested_format(api, params) is None:
            return None if default is None else self.of(default.schema)
        wanted = requested_schema(api, params)
        if wanted == JSON_OBJECT:
            return self._object
        return self.of(wanted) if isinstance(wanted, dict) else None

    def of(self, schema: dict[str, Any]) -> AnswerCheck:
        key = json.dumps(schema, sort_keys=True, ensure_ascii=False)
        check = self._by_key.get(key)
        if check is None:
            if len(self._by_key) >= self._limit:
                self._by_key.pop(next(iter(self._by_key)))
            check = self._by_key[key] = AnswerCheck.of(schema)
        return check


# -- a completed stream's answers -----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ChoiceAnswer:
    """One choice's answer as the stream left it."""

    index: int
    text: str
    finish_reason: str | None
    checked: bool = True  # False for a refusal or tool calls: those are not answers to check


def first_invalid(check: AnswerCheck, answers: list[ChoiceAnswer]) -> tuple[int, str] | None:
    """(choice index, what is wrong) of the first invalid answer, or ``None`` when all are valid.

    An answer cut off by ``length`` is invalid even when the part that came happens to parse.
    """
    for answer in answers:
        if not answer.checked:
            continue
        problem = check.problem(answer.text)
        if answer.finish_reason == "length":
            problem = f"{problem} (cut off: finish_reason length)" if problem else "cut off by finish_reason length"
        if problem is not None:
            return answer.index, problem
    return None
