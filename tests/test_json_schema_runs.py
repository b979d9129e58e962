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


# -- checking, redoing, failing -------------------------------------------------------------
def test_an_invalid_answer_is_redone_and_the_valid_one_kept(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path, person: Path
) -> None:
    sim = start_sim(faults=["invalid-json,times=1,match=who"])
    ran = run_cli(prompts(tmp_path), "--json-schema", str(person), "--max-retries", "0", sim=sim)
    assert ran.exit_code == 0, ran.stderr
    entry = ran.by_id()["a"]
    assert (entry["status"], entry["attempts"], entry["valid"]) == ("ok", 2, True)
    assert ran.by_id()["b"]["attempts"] == 1
    assert json.loads((ran.out / "a.json").read_text())["name"]
    assert sorted(p.name for p in ran.out.glob("[ab]*")) == ["a.json", "b.json"]  # no part file, no error record
    assert ran.summary()["this_run"]["invalid_outputs"] == 0


@pytest.mark.parametrize(
    ("fault", "args", "message"),
    [
        ("invalid-json", [], "the answer is not JSON: Expecting ',' delimiter"),
        ("off-schema", [], "$: 'off-schema' is not of type 'object'"),
        (None, ["--max-tokens", "2"], "(cut off: finish_reason length)"),
    ],
)
def test_an_answer_invalid_every_time_fails_the_item_with_the_validators_error(
    start_sim: Callable[..., Simulator],
    run_cli: Callable[..., Ran],
    tmp_path: Path,
    person: Path,
    fault: str | None,
    args: list[str],
    message: str,
) -> None:
    sim = start_sim(faults=[f"{fault},match=who"] if fault else [])
    rows = [{"id": "a", "prompt": "who is a"}]
    ran = run_cli(prompts(tmp_path, rows), "--json-schema", str(person), "--invalid-retries", "1", *args, sim=sim)
    assert ran.exit_code == 1
    entry = ran.by_id()["a"]
    assert (entry["status"], entry["attempts"], entry["error"]["type"]) == ("failed", 2, "invalid_output")
    assert message in entry["error"]["message"]
    assert "valid" not in entry
    assert len(sim.stats.requests) == 2  # one redo: --invalid-retries 1
    record = json.loads((ran.out / "a.error.json").read_text())
    assert [a["error"]["type"] for a in record["attempts"]] == ["invalid_output", "invalid_output"]
    assert record["partial_file"] == "a.json.part"  # the last answer, kept as partial output
    assert not (ran.out / "a.json").exists()  # never renamed complete
    assert ran.summary()["this_run"]["invalid_outputs"] == 1
    assert ran.summary()["statuses"] == {"failed": 1}


def test_invalid_redos_do_not_use_up_transport_retries(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path, person: Path
) -> None:
    sim = start_sim(faults=["503,times=1,match=who", "invalid-json,times=3,match=who"])
    rows = [{"id": "a", "prompt": "who is a"}]
    ran = run_cli(
        prompts(tmp_path, rows), "--json-schema", str(person), "--max-retries", "1", "--backoff-base", "0", sim=sim
    )
    assert ran.exit_code == 0, ran.stderr
    # 503 (a retry), then two invalid answers (two redos), then a valid one.
    assert [r.fault for r in sim.stats.requests] == ["status", "invalid-json", "invalid-json", None]
    assert ran.by_id()["a"]["attempts"] == 4


def test_several_choices_are_each_checked(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, person: Path
) -> None:
    rows = [{"id": "a", "prompt": "who", "params": {"n": 2}}]
    ran = run_cli(prompts(tmp_path, rows), "--json-schema", str(person), sim=sim)
    assert ran.exit_code == 0, ran.stderr
    assert ran.by_id()["a"]["valid"] is True
    for name in ("a.1.json", "a.2.json"):
        assert set(json.loads((ran.out / name).read_text())) == {"name", "age"}


def test_a_refusal_is_not_checked(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path, person: Path
) -> None:
    sim = start_sim(faults=["refuse"])
    ran = run_cli(prompts(tmp_path, [{"id": "a", "prompt": "who"}]), "--json-schema", str(person), sim=sim)
    assert ran.exit_code == 1
    entry = ran.by_id()["a"]
    assert (entry["status"], entry["attempts"]) == ("refused", 1)
    assert "valid" not in entry and "error" not in entry


def test_a_line_with_its_own_format_is_checked_against_it(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path, person: Path
) -> None:
    sim = start_sim(faults=["off-schema,match=obj"])
    own = {"type": "object", "properties": {"x": {"type": "boolean"}}, "required": ["x"], "additionalProperties": False}
    rows = [
        {
            "id": "own",
            "prompt": "own",
            "params": {"response_format": {"type": "json_schema", "json_schema": {"name": "o", "schema": own}}},
        },
        {"id": "obj", "prompt": "obj", "params": {"response_format": {"type": "json_object"}}},
        {"id": "text", "prompt": "text", "params": {"response_format": {"type": "text"}}},
        {"id": "plain", "prompt": "plain"},
    ]
    ran = run_cli(prompts(tmp_path, rows), "--invalid-retries", "0", sim=sim)  # no --json-schema
    assert ran.exit_code == 1
    by_id = ran.by_id()
    assert set(json.loads((ran.out / "own.txt").read_text())) == {"x"} and by_id["own"]["valid"] is True
    assert by_id["obj"]["error"]["message"] == "$: the answer is a string, not a JSON object"
    assert "valid" not in by_id["text"] and "valid" not in by_id["plain"]  # nothing to check
    assert by_id["plain"]["status"] == "ok"


def test_a_line_own_format_wins_over_the_schema_file(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, person: Path
) -> None:
    rows = [{"id": "a", "prompt": "a", "params": {"response_format": {"type": "json_object"}}}]
    ran = run_cli(prompts(tmp_path, rows), "--json-schema", str(person), sim=sim)
    assert ran.exit_code == 0, ran.stderr
    body = sim.stats.requests[0].body
    assert body is not None and body["response_format"] == {"type": "json_object"}
    assert set(json.loads((ran.out / "a.json").read_text())) == {"answer"}


def test_status_counts_invalid_outputs_apart_and_a_rerun_redoes_them(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path, person: Path
) -> None:
    sim = start_sim(faults=["invalid-json,times=1,match=who", "503,times=1,match=zzz"])
    rows = [{"id": "a", "prompt": "who"}, {"id": "b", "prompt": "zzz"}, {"id": "c", "prompt": "fine"}]
    path = prompts(tmp_path, rows)
    ran = run_cli(path, "--json-schema", str(person), "--invalid-retries", "0", "--max-retries", "0", sim=sim)
    assert ran.exit_code == 1
    status = CliRunner().invoke(app, ["status", str(ran.out)])
    assert status.exit_code == 1
    assert "3 items: 2 failed (1 invalid output), 1 ok" in status.stdout
    assert "failed a (invalid output): the answer is not JSON" in status.stdout
    report = json.loads(CliRunner().invoke(app, ["status", str(ran.out), "--json"]).stdout)
    assert report["invalid_outputs"] == 1 and report["statuses"] == {"failed": 2, "ok": 1}
    again = run_cli(path, "--json-schema", str(person), sim=sim)
    assert again.exit_code == 0, again.stderr
    assert {e["id"]: e["attempts"] for e in again.manifest()[3:]} == {"a": 1, "b": 1}
    # status --prompts hashes the requests with the schema the run sent: nothing is left to do.
    done = CliRunner().invoke(app, ["status", str(ran.out), "--prompts", str(path)])
    assert done.exit_code == 0, done.stdout
    assert "3 of 3 done, 0 to do" in done.stdout


def test_a_line_whose_own_schema_is_no_schema_is_an_input_error(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    bad = {"response_format": {"type": "json_schema", "json_schema": {"name": "b", "schema": {"type": 5}}}}
    ran = run_cli(prompts(tmp_path, [{"id": "a", "prompt": "a"}, {"id": "b", "prompt": "b", "params": bad}]), sim=sim)
    assert ran.exit_code == 2
    assert "p.jsonl:2: the line's JSON schema is not a JSON Schema (Draft 2020-12): at $.type" in ran.stderr
    assert sim.stats.requests == []


def test_with_several_choices_the_error_names_the_choice(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path, person: Path
) -> None:
    sim = start_sim(faults=["off-schema"])
    rows = [{"id": "a", "prompt": "who", "params": {"n": 2}}]
    ran = run_cli(prompts(tmp_path, rows), "--json-schema", str(person), "--invalid-retries", "0", sim=sim)
    assert ran.exit_code == 1
    assert ran.by_id()["a"]["error"]["message"] == "choice 1: $: 'off-schema' is not of type 'object'"
    assert sorted(p.name for p in ran.out.glob("a.*")) == ["a.1.json.part", "a.2.json.part", "a.error.json"]
