"""--json-schema end to end: asked for in the request, every answer checked, invalid answers redone."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from streamdump.cli import app
from streamdump.simulator import Simulator

from support import Ran, write_jsonl

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


@pytest.fixture
def person(tmp_path: Path) -> Path:
    path = tmp_path / "person.json"
    path.write_text(json.dumps(PERSON))
    return path


def prompts(tmp_path: Path, rows: list[dict[str, Any]] | None = None) -> Path:
    return write_jsonl(tmp_path / "p.jsonl", rows or [{"id": "a", "prompt": "who is a"}, {"id": "b", "prompt": "b"}])


# -- usage errors: exit 2, nothing sent, nothing written ------------------------------------
@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "not JSON"),
        ('{"type": "objectx"}', "not a JSON Schema (Draft 2020-12): at $.type"),
        ('{"$ref": "https://example.com/s.json"}', "does not point into this schema (nothing is fetched)"),
        ("[]", "a schema for answers must be a JSON object"),
    ],
)
def test_a_schema_file_that_is_no_schema_stops_before_anything_is_sent(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, text: str, says: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    ran = run_cli(prompts(tmp_path), "--json-schema", str(bad), sim=sim)
    assert ran.exit_code == 2
    assert f"streamdump: --json-schema {bad}: " in ran.stderr and says in ran.stderr
    assert sim.stats.requests == []
    assert not ran.out.exists()


def test_a_missing_schema_file_stops_before_anything_is_sent(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    ran = run_cli(prompts(tmp_path), "--json-schema", str(tmp_path / "nowhere.json"), sim=sim)
    assert ran.exit_code == 2
    assert "cannot read it" in ran.stderr
    assert sim.stats.requests == []


# -- what is sent ---------------------------------------------------------------------------
def test_chat_sends_the_schema_as_response_format_named_after_the_file(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, person: Path
) -> None:
    ran = run_cli(prompts(tmp_path), "--json-schema", str(person), sim=sim)
    assert ran.exit_code == 0, ran.stderr
    for request in sim.stats.requests:
        assert request.body is not None
        assert request.body["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": PERSON, "strict": True},
        }
    for item in ("a", "b"):  # the answer files default to .json
        answer = json.loads((ran.out / f"{item}.json").read_text())
        assert list(Draft202012Validator(PERSON).iter_errors(answer)) == []
    assert not list(ran.out.glob("*.txt"))


def test_a_schema_outside_the_strict_subset_is_sent_with_strict_false_and_said_so(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    loose = tmp_path / "loose.json"
    loose.write_text(json.dumps({"type": "object", "properties": {"name": {"type": "string"}}}))
    argv = ["run", str(prompts(tmp_path)), "-o", str(tmp_path / "out"), "--base-url", sim.base_url]
    ran = CliRunner().invoke(app, [*argv, "--json-schema", str(loose)], catch_exceptions=False)
    assert ran.exit_code == 0, ran.stderr
    body = sim.stats.requests[0].body
    assert body is not None and body["response_format"]["json_schema"]["strict"] is False
    assert "sent with strict: false, as OpenAI's strict mode would refuse the schema" in ran.stderr
    assert "($: an object needs additionalProperties: false in strict mode)" in ran.stderr


def test_ext_still_wins_over_the_json_default(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, person: Path
) -> None:
    ran = run_cli(prompts(tmp_path), "--json-schema", str(person), "--ext", "txt", sim=sim)
    assert ran.exit_code == 0, ran.stderr
    assert json.loads((ran.out / "a.txt").read_text())["name"]
