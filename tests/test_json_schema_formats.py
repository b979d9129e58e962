"""--json-schema and --max-cost through the Responses API and text completions, against the simulator."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from streamdump.simulator import Simulator

from support import Ran, write_jsonl

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
ANSWER = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def schema_file(tmp_path: Path, schema: dict[str, object], name: str = "person") -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(schema))
    return path


def test_responses_sends_the_schema_as_text_format_and_checks_the_answers(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "who"}, {"id": "b", "prompt": "what"}])
    ran = run_cli(prompts, "--api", "responses", "--json-schema", str(schema_file(tmp_path, PERSON)), sim=sim)
    assert ran.exit_code == 0, ran.stderr
    for request in sim.stats.requests:
        assert request.path.endswith("/responses")
        assert request.body is not None
        assert request.body["text"] == {
            "format": {"type": "json_schema", "name": "person", "schema": PERSON, "strict": True}
        }
    for entry in ran.manifest():
        assert (entry["api"], entry["status"], entry["valid"]) == ("responses", "ok", True)
        answer = json.loads((ran.out / entry["file"]).read_text())
        assert list(Draft202012Validator(PERSON).iter_errors(answer)) == []


@pytest.mark.parametrize(
    ("fault", "args", "message"),
    [
        ("invalid-json", [], "the answer is not JSON"),
        (None, ["--max-tokens", "16"], "(cut off: finish_reason length)"),  # 16: the least OpenAI takes
    ],
)
def test_responses_redoes_an_invalid_answer_then_fails_the_item(
    start_sim: Callable[..., Simulator],
    run_cli: Callable[..., Ran],
    tmp_path: Path,
    fault: str | None,
    args: list[str],
    message: str,
) -> None:
    sim = start_sim(faults=[fault] if fault else [])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "who"}])
    long_name = {**PERSON, "properties": {**PERSON["properties"], "name": {"type": "string", "minLength": 120}}}
    schema = schema_file(tmp_path, long_name)  # more than 16 pieces of JSON
    ran = run_cli(prompts, "--api", "responses", "--json-schema", str(schema), "--invalid-retries", "1", *args, sim=sim)
    assert ran.exit_code == 1
    entry = ran.by_id()["a"]
    assert (entry["status"], entry["attempts"], entry["error"]["type"]) == ("failed", 2, "invalid_output")
    assert message in entry["error"]["message"]
    assert (ran.out / "a.json.part").exists() and not (ran.out / "a.json").exists()


def test_completions_sends_no_schema_and_checks_the_answers(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    # A base model asked for JSON in its prompt: the simulator's `json` fault plays one that obliges
    # for "json" prompts, and prose for the others.
    sim = start_sim(faults=["json,match=json"])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "json please"}, {"id": "b", "prompt": "prose"}])
    schema = schema_file(tmp_path, ANSWER, "answer")
    ran = run_cli(prompts, "--api", "completions", "--json-schema", str(schema), "--invalid-retries", "0", sim=sim)
    assert ran.exit_code == 1
    for request in sim.stats.requests:
        assert request.path.endswith("/completions") and not request.path.endswith("chat/completions")
        assert request.body is not None and "response_format" not in request.body and "text" not in request.body
    by_id = ran.by_id()
    assert (by_id["a"]["status"], by_id["a"]["valid"]) == ("ok", True)
    assert set(json.loads((ran.out / "a.json").read_text())) == {"answer"}
    assert by_id["b"]["error"]["type"] == "invalid_output"
    assert by_id["b"]["error"]["message"].startswith("the answer is not JSON")


@pytest.mark.parametrize("api", ["responses", "completions"])
def test_the_spending_cap_holds_for_every_format(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, api: str
) -> None:
    # $1 an output token, each request may cost $20 and costs $12: three fit in $50, a fourth could not.
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": f"p{n}", "prompt": f"prompt {n}"} for n in range(5)])
    args = ["--api", api, "--price-in", "0", "--price-out", "1000000", "--max-tokens", "20", "--max-cost", "50"]
    ran = run_cli(prompts, *args, sim=sim)
    assert ran.exit_code == 1
    assert "stopped early: spending cap reached ($36.00 of $50.00)" in ran.stderr
    assert [entry["cost_usd"] for entry in ran.manifest()] == [12, 12, 12]
    assert ran.summary()["not_started"] == 2
