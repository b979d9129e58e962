"""--results-jsonl: OpenAI Batch API output lines that match the text files (pure table, then end to end)."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pytest
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ConfigDict

from streamdump.results import batch_line
from streamdump.simulator import Simulator

from support import Ran, expected_text, spawn_run, wait_for, write_jsonl


# The OpenAI API's BatchRequestOutput (openapi.yaml), strictly: no other keys.
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class BatchResponse(_Strict):
    status_code: int
    request_id: str
    body: dict[str, Any]


class BatchError(_Strict):
    code: str
    message: str


class BatchRequestOutput(_Strict):
    id: str
    custom_id: str
    response: BatchResponse | None
    error: BatchError | None


def parse_results(path: Path) -> dict[str, BatchRequestOutput]:
    lines = [BatchRequestOutput.model_validate_json(line) for line in path.read_text("utf-8").splitlines()]
    by_id = {line.custom_id: line for line in lines}
    assert len(by_id) == len(lines), "a custom_id appears twice"
    assert len({line.id for line in lines}) == len(lines)
    assert all(line.id.startswith("batch_req_") for line in lines)
    for line in lines:
        if line.error is None:
            assert line.response is not None and line.response.status_code == 200
            ChatCompletion.model_validate(line.response.body)  # the body is a chat.completion
    return by_id


def answer(line: BatchRequestOutput) -> Any:
    assert line.response is not None
    return ChatCompletion.model_validate(line.response.body).choices[0]


# -- the line, pure -------------------------------------------------------------------------------
OK: dict[str, Any] = {
    "id": "poem",
    "status": "ok",
    "file": "poem.txt",
    "finish_reason": "stop",
    "model": "gpt-4o-mini-2024-07-18",
    "usage": {"prompt_tokens": 12, "completion_tokens": 85, "source": "server"},
    "duration_s": 2.5,
    "request_hash": "abc",
    "request_id": "req_123",
    "response_id": "chatcmpl-9",
    "ended_at": "2025-01-02T03:04:05.500+00:00",
}


def test_an_ok_line_is_a_batch_api_success() -> None:
    line = batch_line(OK, "Roses are red.")
    BatchRequestOutput.model_validate(line)
    assert line["custom_id"] == "poem" and line["error"] is None
    assert line["response"]["status_code"] == 200 and line["response"]["request_id"] == "req_123"
    body = ChatCompletion.model_validate(line["response"]["body"])
    assert body.id == "chatcmpl-9" and body.model == "gpt-4o-mini-2024-07-18" and body.object == "chat.completion"
    assert body.choices[0].message.content == "Roses are red." and body.choices[0].finish_reason == "stop"
    assert body.usage is not None and (body.usage.prompt_tokens, body.usage.completion_tokens) == (12, 85)
    assert body.usage.total_tokens == 97
    assert body.created == 1735787043  # ended_at minus duration_s
    assert batch_line(OK, "Roses are red.") == line  # deterministic: a rebuilt line is the same line


@pytest.mark.parametrize(
    ("changes", "status_code", "code"),
    [
        ({"status": "failed", "error": {"type": "http_400", "message": "bad", "status": 400}}, 400, "http_400"),
        ({"status": "failed", "error": {"type": "http_503", "message": "busy", "status": 503}}, 503, "http_503"),
        ({"status": "failed", "error": {"type": "connection", "message": "lost", "status": None}}, None, "connection"),
        ({"status": "failed", "error": {"type": "stall", "message": "stalled", "status": None}}, None, "stall"),
        ({"status": "cancelled"}, None, "cancelled"),
        ({"status": "failed"}, None, "failed"),
    ],
)
def test_a_failure_is_a_batch_api_error(changes: dict[str, Any], status_code: int | None, code: str) -> None:
    entry = {**OK, "finish_reason": None, **changes}
    line = batch_line(entry, None)
    parsed = BatchRequestOutput.model_validate(line)
    assert parsed.error is not None and parsed.error.code == code and parsed.error.message
    if status_code is None:
        assert parsed.response is None
    else:
        assert parsed.response is not None and parsed.response.status_code == status_code
        assert parsed.response.body["error"]["message"] == parsed.error.message


def test_an_ok_entry_without_its_file_is_an_error_not_an_empty_answer() -> None:
    line = batch_line(OK, None)
    assert line["response"] is None and line["error"]["code"] == "missing_output"


def test_without_a_server_request_id_a_stand_in_is_marked_as_ours() -> None:
    line = batch_line({**OK, "request_id": None, "response_id": None}, "x")
    assert line["response"]["request_id"].startswith("streamdump-")
    assert line["response"]["body"]["id"].startswith("chatcmpl-")


# -- end to end ---------------------------------------------------------------------------------
FAST = ("--backoff-base", "0.01", "--backoff-max", "0.02", "--max-retries", "1")


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    rows: list[dict[str, Any] | str] = [{"id": f"ok-{n}", "prompt": f"fine {n}"} for n in range(5)]
    rows += [
        {"id": "refused", "prompt": "bad request"},
        {"id": "dropped", "prompt": "drop me"},
        {"id": "filtered", "prompt": "filter me"},
        {"id": "short", "prompt": "cut short", "params": {"max_tokens": 3}},
        {"id": "ünï/côdé", "prompt": "unicode id"},
    ]
    return write_jsonl(tmp_path / "p.jsonl", rows)


def faults() -> list[str]:
    return ["status=400,match=bad request,times=1", "drop,after=2,match=drop me,times=2", "content-filter,match=filter"]


def test_results_parse_as_batch_output_and_match_the_text_files(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], mixed: Path, tmp_path: Path
) -> None:
    sim = start_sim(faults=faults())
    results = tmp_path / "res" / "results.jsonl"
    ran = run_cli(mixed, "--results-jsonl", str(results), *FAST, sim=sim)
    assert ran.exit_code == 1, ran.stderr
    assert not results.with_name("results.jsonl.part").exists()
    lines = parse_results(results)
    manifest = ran.by_id()
    assert lines.keys() == manifest.keys() and len(lines) == 10
    for item_id, entry in manifest.items():
        line = lines[item_id]
        if entry["status"] != "ok":
            continue
        assert line.response is not None
        body = ChatCompletion.model_validate(line.response.body)
        assert body.choices[0].message.content == (ran.out / entry["file"]).read_text()
        assert body.choices[0].finish_reason == entry["finish_reason"]
        assert body.usage is not None and body.usage.completion_tokens == entry["usage"]["completion_tokens"]
        assert line.response.request_id == entry["request_id"] and entry["request_id"].startswith("req_sim_")
        assert body.id == entry["response_id"]
    assert answer(lines["ok-0"]).message.content == expected_text("fine 0")
    assert answer(lines["filtered"]).finish_reason == "content_filter"
    assert answer(lines["short"]).finish_reason == "length"
    refused, dropped = lines["refused"], lines["dropped"]
    assert refused.error is not None and refused.error.code == "http_400"
    assert refused.response is not None and refused.response.status_code == 400
    # The server's own error object, as the Batch API would carry it.
    assert refused.response.body == {
        "error": {"message": "simulated 400", "type": "invalid_request_error", "code": 400}
    }
    assert dropped.error is not None and dropped.error.code == "connection" and dropped.response is None

    # Resume: the failed items succeed now; the file is written again for every item, and the
    # lines of items done before are the same lines.
    rerun = run_cli(mixed, "--results-jsonl", str(results), *FAST, sim=sim)
    assert rerun.exit_code == 0, rerun.stderr
    again = parse_results(results)
    assert again.keys() == lines.keys()
    assert all(line.error is None for line in again.values())
    for item_id in ("ok-0", "ok-4", "filtered", "ünï/côdé"):
        assert again[item_id] == lines[item_id]
    assert again["refused"] != lines["refused"]


def test_each_shard_writes_its_own_results_file(
    sim: Simulator, run_cli: Callable[..., Ran], mixed: Path, tmp_path: Path
) -> None:
    results = tmp_path / "results.jsonl"
    for k in (1, 2):
        ran = run_cli(mixed, "--shard", f"{k}/2", "--results-jsonl", str(results), sim=sim)
        assert ran.exit_code == 0, ran.stderr
        summary = json.loads((ran.out / f"summary.{k}-of-2.json").read_text())
        assert summary["options"]["results_jsonl"] == str(tmp_path / f"results.{k}-of-2.jsonl")
    assert not results.exists()
    one, two = parse_results(tmp_path / "results.1-of-2.jsonl"), parse_results(tmp_path / "results.2-of-2.jsonl")
    assert not one.keys() & two.keys() and len(one) + len(two) == 10


@pytest.mark.parametrize(
    "name",
    ["manifest.jsonl", "summary.json", "a.txt", "x.error.json", "manifest.1-of-2.jsonl", "summary.2-of-3.json", ".a"],
)
def test_a_results_file_on_one_of_the_out_dirs_own_files_is_refused(
    sim: Simulator, run_cli: Callable[..., Ran], mixed: Path, tmp_path: Path, name: str
) -> None:
    ran = run_cli(mixed, "--results-jsonl", str(tmp_path / "out" / name), sim=sim)
    assert ran.exit_code == 2
    assert "an item or the run could write that name in the out-dir" in ran.stderr
    assert sim.stats.requests == []


def test_a_results_file_an_item_could_write_with_this_ext_is_refused(
    sim: Simulator, run_cli: Callable[..., Ran], mixed: Path, tmp_path: Path
) -> None:
    """With --ext jsonl an item with the id "results" writes results.jsonl(.part) in the out-dir."""
    ran = run_cli(mixed, "--ext", "jsonl", "--results-jsonl", str(tmp_path / "out" / "results.jsonl"), sim=sim)
    assert ran.exit_code == 2
    assert "could write that name" in ran.stderr
    assert sim.stats.requests == []


def test_the_prompts_file_or_a_directory_as_results_file_is_refused(
    sim: Simulator, run_cli: Callable[..., Ran], mixed: Path, tmp_path: Path
) -> None:
    before = mixed.read_bytes()
    ran = run_cli(mixed, "--results-jsonl", str(mixed), sim=sim)
    assert ran.exit_code == 2 and "that is the prompts file" in ran.stderr
    assert mixed.read_bytes() == before
    ran = run_cli(mixed, "--results-jsonl", str(tmp_path), sim=sim)
    assert ran.exit_code == 2 and "that is a directory" in ran.stderr
    assert sim.stats.requests == []


def test_an_unwritable_results_file_is_a_setup_error(
    sim: Simulator, run_cli: Callable[..., Ran], mixed: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    ran = run_cli(mixed, "--results-jsonl", str(blocker / "results.jsonl"), sim=sim)
    assert ran.exit_code == 2
    assert "cannot write" in ran.stderr
    assert sim.stats.requests == []


def test_a_stopped_run_still_leaves_a_whole_results_file(start_sim: Callable[..., Simulator], tmp_path: Path) -> None:
    sim = start_sim(tokens_per_second=40, length=30)
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": f"i{n:02d}", "prompt": f"prompt {n}"} for n in range(12)])
    out, results = tmp_path / "out", tmp_path / "results.jsonl"
    proc = spawn_run(prompts, out, "-c", "4", "--results-jsonl", str(results), base_url=sim.base_url)
    wait_for(lambda: len(list(out.glob("*.txt"))) >= 4 and len(list(out.glob("*.txt.part"))) >= 2)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 143, stderr
    assert not results.with_name("results.jsonl.part").exists()
    lines = parse_results(results)
    statuses: dict[str, Literal["ok", "cancelled"]] = {
        json.loads(raw)["id"]: json.loads(raw)["status"] for raw in (out / "manifest.jsonl").read_text().splitlines()
    }
    assert lines.keys() == statuses.keys()
    for item_id, status in statuses.items():
        error = lines[item_id].error
        assert (error is None) if status == "ok" else (error is not None and error.code == "cancelled")


def test_refusals_several_choices_and_tool_calls_reach_the_results_as_the_api_gives_them(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    sim = start_sim(faults=["refuse,match=forbidden"])
    rows = [
        {"id": "no", "prompt": "forbidden thing"},
        {"id": "three", "prompt": "three ways", "params": {"n": 3}},
        {"id": "tool", "prompt": "use a tool", "params": {"tools": tools}},
    ]
    results = tmp_path / "results.jsonl"
    ran = run_cli(write_jsonl(tmp_path / "p.jsonl", rows), "--results-jsonl", str(results), sim=sim)
    assert ran.exit_code == 1  # a refusal is not ok for streamdump
    lines = parse_results(results)
    refused = answer(lines["no"])
    assert lines["no"].error is None and lines["no"].response is not None
    assert lines["no"].response.status_code == 200
    assert refused.message.refusal == (ran.out / "no.refusal.txt").read_text()
    body = ChatCompletion.model_validate(lines["three"].response.body)  # type: ignore[union-attr]
    assert [c.index for c in body.choices] == [0, 1, 2]
    assert [c.message.content for c in body.choices] == [(ran.out / f"three.{k}.txt").read_text() for k in (1, 2, 3)]
    called = answer(lines["tool"])
    assert called.finish_reason == "tool_calls"
    written = json.loads((ran.out / "tool.tool_calls.json").read_text())
    assert [c.model_dump(exclude_none=True) for c in called.message.tool_calls] == written
