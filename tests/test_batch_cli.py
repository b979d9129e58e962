"""`streamdump batch submit|status|collect|cancel` through the CLI against the simulator's Batch API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from openai.types.chat import ChatCompletion
from typer.testing import CliRunner

from streamdump.cli import app
from streamdump.lock import hold_lock
from streamdump.simulator import Simulator
from streamdump.simulator.batch_faults import parse_batch_fault
from streamdump.simulator.replies import REFUSAL
from streamdump.simulator.script import response_pieces

from support import (
    AMBIENT,
    Ran,
    collect_stderr,
    expected_choice,
    expected_reasoning,
    expected_text,
    wait_for,
    write_jsonl,
)

FAST = ("--backoff-base", "0.01", "--backoff-max", "0.02")


def batch(command: str, *args: str, sim: Simulator | None = None) -> Ran:
    argv = ["batch", command, *args]
    if sim is not None:
        argv += ["--base-url", sim.base_url]
    result = CliRunner().invoke(app, argv, catch_exceptions=False)
    out = Path(args[args.index("-o") + 1]) if "-o" in args else Path(args[0]) if args else Path("out")
    return Ran(result.exit_code, result.stdout, result.stderr, out)


def journal(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "batches.jsonl").read_text().splitlines()]


def events(out: Path) -> list[str]:
    return [entry["event"] for entry in journal(out) if entry["event"] != "item"]


def uploads(sim: Simulator) -> list[Any]:
    return [f for f in sim.batch_api.files.values() if f.purpose == "batch"]


PROMPTS = [
    {"id": "a", "prompt": "first"},
    {"id": "b", "prompt": "second", "params": {"n": 2}},
    {"id": "c", "prompt": "please refuse this"},
]


def test_submit_then_collect_writes_what_a_streamed_run_writes(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(reasoning=2, faults=["refuse,match=refuse"])
    prompts = write_jsonl(tmp_path / "p.jsonl", PROMPTS)  # type: ignore[arg-type]
    out = tmp_path / "out"
    sub = batch("submit", str(prompts), "-o", str(out), sim=sim)
    assert sub.exit_code == 0, sub.stderr
    assert "submitted 3 requests in 1 batch" in sub.stderr
    assert events(out) == ["file_written", "upload_started", "uploaded", "batch_creating", "batch_created"]
    sent = next(iter(sim.batch_api.batches.values())).lines
    assert sent[0] == {
        "custom_id": "a",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "first"}]},
    }
    col = batch("collect", str(out), sim=sim)
    assert col.exit_code == 1, col.stderr  # c was refused: not ok, as in a run
    assert (out / "a.txt").read_text() == expected_text("first")
    assert (out / "a.reasoning.txt").read_text() == expected_reasoning("first", 2)
    assert [(out / f"b.{i}.txt").read_text() for i in (1, 2)] == [expected_choice("second", i) for i in (0, 1)]
    assert (out / "c.refusal.txt").read_text() == REFUSAL and not (out / "c.txt").exists()
    by_id = {entry["id"]: entry for entry in col.manifest()}
    batch_id = next(iter(sim.batch_api.batches))
    a = by_id["a"]
    assert (a["status"], a["via"], a["batch_id"], a["usage"]["source"]) == ("ok", "batch", batch_id, "server")
    assert a["request_id"].startswith("req_") and a["response_id"].startswith("chatcmpl-")
    assert by_id["c"]["status"] == "refused" and by_id["b"]["choices"][1]["file"] == "b.2.txt"

    # The same job run live writes the same files, and the same manifest fields but for how it ran.
    live = run_cli(prompts, sim=sim, out=tmp_path / "live")
    assert live.exit_code == 1
    for name in ("a.txt", "a.reasoning.txt", "b.1.txt", "b.2.txt", "c.refusal.txt"):
        assert (out / name).read_bytes() == (tmp_path / "live" / name).read_bytes(), name
    ran_live = live.by_id()
    ignore = {"via", "batch_id", "request_id", "response_id", "ended_at", "ttft_s", "duration_s"}
    for item in ("a", "b", "c"):
        ours = {k: v for k, v in by_id[item].items() if k not in ignore}
        theirs = {k: v for k, v in ran_live[item].items() if k not in ignore}
        assert ours == theirs, item


def _submitted(sim: Simulator, tmp_path: Path, rows: list[dict[str, Any]] | None = None, *args: str) -> Path:
    prompts = write_jsonl(tmp_path / "p.jsonl", rows or [{"id": "a", "prompt": "first"}])  # type: ignore[arg-type]
    out = tmp_path / "out"
    ran = batch("submit", str(prompts), "-o", str(out), *FAST, *args, sim=sim)
    assert ran.exit_code == 0, ran.stderr
    return out


def _files(out: Path) -> dict[str, tuple[int, int, bytes]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir() if p.is_file()}


def test_collecting_twice_changes_nothing(start_sim: Callable[..., Simulator], tmp_path: Path) -> None:
    sim = start_sim(faults=["status=400,match=bad"])
    out = _submitted(sim, tmp_path, [{"id": "a", "prompt": "good"}, {"id": "b", "prompt": "bad one"}])
    first = batch("collect", str(out), sim=sim)
    assert first.exit_code == 1, first.stderr  # b failed
    assert json.loads((out / "b.error.json").read_text())["error"]["type"] == "http_400"
    before = _files(out)
    again = batch("collect", str(out), sim=sim)
    assert again.exit_code == 0, again.stderr  # nothing left to collect, nothing not ok written
    assert "0 batches collected" in again.stderr
    assert _files(out) == before
    # Even when the journal lost its "collected" (a collect killed before writing it).
    lines = (out / "batches.jsonl").read_text().splitlines(keepends=True)
    (out / "batches.jsonl").write_text("".join(line for line in lines if '"collected"' not in line))
    third = batch("collect", str(out), sim=sim)
    assert "2 already written" in third.stderr, third.stderr
    after = {name: v for name, v in _files(out).items() if name != "batches.jsonl"}
    assert after == {name: v for name, v in before.items() if name != "batches.jsonl"}


def test_status_exit_codes(start_sim: Callable[..., Simulator], tmp_path: Path) -> None:
    sim = start_sim(batch_seconds=3600)
    assert batch("status", str(tmp_path / "nothing"), sim=sim).exit_code == 2
    out = _submitted(sim, tmp_path)
    running = batch("status", str(out), sim=sim)
    assert running.exit_code == 1 and "in_progress  0/1 done, 0 failed" in running.stdout
    sim.batch_api.processing_seconds = 0
    done = batch("status", str(out), sim=sim)
    assert done.exit_code == 0 and "completed  1/1 done, 0 failed" in done.stdout, done.stdout
    unreachable = CliRunner().invoke(
        app, ["batch", "status", str(out), "--base-url", "http://127.0.0.1:9/v1", "--max-retries", "0"]
    )
    assert unreachable.exit_code == 2 and "connection" in unreachable.stderr


@pytest.mark.parametrize(
    ("rule", "made"),
    [
        ("upload-drop", (1, 0)),  # the file was stored, its answer lost
        ("status=500,match=input_file_id", (1, 0)),  # uploaded; creating the batch failed
        ("create-drop", (1, 1)),  # the batch was created, its answer lost
    ],
)
def test_an_interrupted_submit_run_again_finishes_the_same_batch(
    start_sim: Callable[..., Simulator], tmp_path: Path, rule: str, made: tuple[int, int]
) -> None:
    sim = start_sim(batch_faults=(parse_batch_fault(f"{rule},times=1"),))
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "first"}])
    out = tmp_path / "out"
    cut = batch("submit", str(prompts), "-o", str(out), "--max-retries", "0", sim=sim)
    assert cut.exit_code == 1, cut.stderr
    assert (len(uploads(sim)), len(sim.batch_api.batches)) == made
    assert "batch_created" not in events(out)
    again = batch("submit", str(prompts), "-o", str(out), sim=sim)
    assert again.exit_code == 0, again.stderr
    assert len(uploads(sim)) == 1 and len(sim.batch_api.batches) == 1  # found again, not made twice
    assert events(out).count("batch_created") == 1 and events(out).count("file_written") == 1
    third = batch("submit", str(prompts), "-o", str(out), sim=sim)
    assert third.exit_code == 0 and "nothing left to send (0 already done, 1 already in a batch)" in third.stderr
    assert batch("collect", str(out), sim=sim).exit_code == 0
    assert (out / "a.txt").read_text() == expected_text("first")


@pytest.mark.parametrize("drop", ["upload-drop", "create-drop"])
def test_a_retried_write_looks_before_it_writes_again(
    start_sim: Callable[..., Simulator], tmp_path: Path, drop: str
) -> None:
    sim = start_sim(batch_faults=(parse_batch_fault(f"{drop},times=1"),))
    _submitted(sim, tmp_path)
    assert len(uploads(sim)) == 1 and len(sim.batch_api.batches) == 1


def test_transient_errors_are_retried_and_a_401_stops(start_sim: Callable[..., Simulator], tmp_path: Path) -> None:
    sim = start_sim(batch_faults=(parse_batch_fault("status=503,times=2"),))
    out = _submitted(sim, tmp_path)
    assert len(sim.batch_api.batches) == 1
    locked_out = start_sim(batch_faults=(parse_batch_fault("status=401"),))
    ran = batch("collect", str(out), *FAST, sim=locked_out)
    assert ran.exit_code == 1 and "HTTP 401" in ran.stderr and "check the API key" in ran.stderr
    assert "retrying" not in ran.stderr


def test_an_expired_batch_then_resubmitting_the_failures(start_sim: Callable[..., Simulator], tmp_path: Path) -> None:
    sim = start_sim(batch_faults=(parse_batch_fault("expire,after=1,times=1"),))
    rows = [{"id": "a", "prompt": "one"}, {"id": "b", "prompt": "two"}, {"id": "c", "prompt": "three"}]
    out = _submitted(sim, tmp_path, rows)
    first = batch("collect", str(out), sim=sim)
    assert first.exit_code == 1
    by_id = {entry["id"]: entry for entry in first.manifest()}
    assert by_id["a"]["status"] == "ok" and (out / "a.txt").exists()
    assert [by_id[i]["error"]["type"] for i in "bc"] == ["batch_expired", "batch_expired"]
    assert batch("status", str(out), sim=sim).exit_code == 1
    resubmit = batch("submit", str(tmp_path / "p.jsonl"), "-o", str(out), sim=sim)
    assert "submitted 2 requests" in resubmit.stderr and "1 already done" in resubmit.stderr
    second = batch("collect", str(out), sim=sim)
    assert second.exit_code == 0, second.stderr
    assert not (out / "b.error.json").exists() and (out / "b.txt").read_text() == expected_text("two")
    final = batch("status", str(out), sim=sim)
    assert final.exit_code == 0, final.stdout  # the expired batch is settled: a is ok, b and c went again
    assert "expired  1/3 done, 2 failed" in final.stdout and "its failures were sent again" in final.stdout
    status = CliRunner().invoke(app, ["status", str(out)])
    assert status.exit_code == 0, status.stdout  # an ordinary out-dir


def test_a_batch_refused_for_the_queue_leaves_its_items_for_the_next_submit(
    start_sim: Callable[..., Simulator], tmp_path: Path
) -> None:
    sim = start_sim(batch_faults=(parse_batch_fault("token-limit,times=1"),))
    out = _submitted(sim, tmp_path)
    col = batch("collect", str(out), sim=sim)
    assert col.exit_code == 1 and "1 refused for the provider's queue" in col.stderr
    assert "token_limit_exceeded" in col.stderr and not (out / "manifest.jsonl").exists()
    assert events(out)[-1] == "released"
    status = batch("status", str(out), sim=sim)
    assert status.exit_code == 1 and "released" in status.stdout and "run batch submit" in status.stdout
    again = batch("submit", str(tmp_path / "p.jsonl"), "-o", str(out), sim=sim)
    assert "submitted 1 request in 1 batch" in again.stderr
    assert batch("collect", str(out), sim=sim).exit_code == 0 and (out / "a.txt").exists()


def test_cancel_then_collect_records_the_unrun_items(start_sim: Callable[..., Simulator], tmp_path: Path) -> None:
    sim = start_sim(batch_seconds=3600)
    out = _submitted(sim, tmp_path)
    cancelled = batch("cancel", str(out), sim=sim)
    assert cancelled.exit_code == 0 and "asked 1 batch to cancel" in cancelled.stderr
    col = batch("collect", str(out), sim=sim)
    assert col.exit_code == 1
    assert col.manifest()[0]["error"]["type"] == "batch_cancelled"


def test_submit_checks_the_input_as_run_does(sim: Simulator, tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a"}, "not json"])
    ran = batch("submit", str(prompts), "-o", str(tmp_path / "out"), sim=sim)
    assert ran.exit_code == 2 and "p.jsonl:1:" in ran.stderr and "p.jsonl:2:" in ran.stderr
    assert not (tmp_path / "out").exists() and not sim.batch_api.files


def test_submit_splits_by_model_and_size(sim: Simulator, tmp_path: Path) -> None:
    rows = [{"id": f"i{k}", "prompt": f"p{k}", "model": "m1" if k % 2 else "m2"} for k in range(5)]
    out = _submitted(sim, tmp_path, rows, "--max-batch-requests", "2")
    models = sorted((b.model, len(b.lines)) for b in sim.batch_api.batches.values())
    assert models == [("m1", 2), ("m2", 1), ("m2", 2)]
    assert batch("collect", str(out), sim=sim).exit_code == 0


def test_run_leaves_items_in_unfinished_batches_unless_forced(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(batch_seconds=3600)
    rows = [{"id": "a", "prompt": "first"}, {"id": "z", "prompt": "not in the batch"}]
    out = _submitted(sim, tmp_path, rows[:1])
    prompts = write_jsonl(tmp_path / "both.jsonl", rows)  # type: ignore[arg-type]
    ran = run_cli(prompts, sim=sim, out=out)
    assert ran.exit_code == 1 and "1 item is in unfinished batches" in ran.stderr
    assert [entry["id"] for entry in ran.manifest()] == ["z"]  # a was not paid for twice
    forced = run_cli(prompts, "--force", sim=sim, out=out)
    assert forced.exit_code == 0 and (out / "a.txt").read_text() == expected_text("first")


def test_a_dry_run_prices_the_batch_discount(sim: Simulator, tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "x", "params": {"max_tokens": 1000}}] * 1)

    def cost(*extra: str) -> str:
        argv = ["run", str(prompts), "--dry-run", "--price-in", "0", "--price-out", "1000", *extra]
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 0, result.stderr
        return next(line for line in result.stdout.splitlines() if line.startswith("cost:"))

    assert cost() == "cost: $0.0000 to $1.00 (prompts alone, up to every response at its max output)"
    assert cost("--batch").startswith("cost: $0.0000 to $0.5000 ")
    refused = CliRunner().invoke(app, ["run", str(prompts), "--batch", "--base-url", sim.base_url])
    assert refused.exit_code == 2 and "batch submit" in refused.stderr


@pytest.mark.parametrize("api", ["responses", "completions"])
def test_responses_and_completions_go_through_batches_too(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path, api: str
) -> None:
    thinking = 0 if api == "completions" else 2
    sim = start_sim(length=20, reasoning=thinking)
    limit = {"responses": "max_output_tokens", "completions": "max_tokens"}[api]
    rows = [{"id": "a", "prompt": "first"}, {"id": "b", "prompt": "second", "params": {limit: 16}}]
    out = _submitted(sim, tmp_path, rows, "--api", api)  # type: ignore[arg-type]
    (sent,) = sim.batch_api.batches.values()
    assert sent.endpoint == f"/v1/{api}" and {line["url"] for line in sent.lines} == {f"/v1/{api}"}
    assert "stream" not in sent.lines[0]["body"] and "stream_options" not in sent.lines[0]["body"]
    col = batch("collect", str(out), sim=sim)
    assert col.exit_code == 0, col.stderr
    assert (out / "a.txt").read_text() == expected_text("first", 20)
    assert (out / "b.txt").read_text() == "".join(response_pieces("second", length=20)[: 16 - thinking])
    by_id = {entry["id"]: entry for entry in col.manifest()}
    assert by_id["a"]["api"] == api and by_id["a"]["finish_reason"] == "stop"
    assert by_id["b"]["finish_reason"] == "length"
    assert by_id["a"]["usage"]["source"] == "server"
    # The same job run live writes the same files and manifest fields, but for how it ran.
    live = run_cli(tmp_path / "p.jsonl", "--api", api, sim=sim, out=tmp_path / "live")
    assert live.exit_code == 0, live.stderr
    names = sorted(p.name for p in (tmp_path / "live").iterdir() if p.suffix == ".txt")
    assert names == sorted(p.name for p in out.iterdir() if p.suffix == ".txt")
    for name in names:
        assert (out / name).read_bytes() == (tmp_path / "live" / name).read_bytes(), name
    ignore = {"via", "batch_id", "request_id", "response_id", "ended_at", "ttft_s", "duration_s"}
    for item, entry in live.by_id().items():
        assert {k: v for k, v in by_id[item].items() if k not in ignore} == {
            k: v for k, v in entry.items() if k not in ignore
        }, item


def test_a_file_of_batch_api_lines_is_split_by_endpoint(sim: Simulator, tmp_path: Path) -> None:
    chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    rows = [
        {"custom_id": "c1", "method": "POST", "url": "/v1/chat/completions", "body": chat},
        {"custom_id": "r1", "method": "POST", "url": "/v1/responses", "body": {"model": "m", "input": "hi"}},
        {"custom_id": "t1", "method": "POST", "url": "/v1/completions", "body": {"model": "m", "prompt": "hi"}},
    ]
    out = _submitted(sim, tmp_path, rows)
    assert sorted(b.endpoint for b in sim.batch_api.batches.values()) == [
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/responses",
    ]
    col = batch("collect", str(out), sim=sim)
    assert col.exit_code == 0, col.stderr
    apis = {entry["id"]: entry["api"] for entry in col.manifest()}
    assert apis == {"c1": "chat", "r1": "responses", "t1": "completions"}
    assert all((out / f"{name}.txt").read_text() == expected_text("hi") for name in ("c1", "r1", "t1"))


def _spawn_collect(out: Path, sim: Simulator) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items() if k not in AMBIENT}
    argv = [sys.executable, "-m", "streamdump", "batch", "collect", str(out), "--wait"]
    argv += ["--poll-interval", "0.02", "--poll-max", "0.05", "--base-url", sim.base_url]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=environ)


def test_collect_wait_polls_until_the_batches_finish(start_sim: Callable[..., Simulator], tmp_path: Path) -> None:
    sim = start_sim(batch_seconds=3600)
    out = _submitted(sim, tmp_path)
    proc = _spawn_collect(out, sim)
    lines, reader = collect_stderr(proc)
    wait_for(lambda: any("still running" in line for line in lines))
    sim.batch_api.processing_seconds = 0  # the batch finishes now
    assert proc.wait(timeout=60) == 0
    reader.join(timeout=10)
    assert proc.stderr is not None
    proc.stderr.close()
    assert (out / "a.txt").read_text() == expected_text("first")


def test_ctrl_c_stops_collect_wait_and_never_cancels(start_sim: Callable[..., Simulator], tmp_path: Path) -> None:
    sim = start_sim(batch_seconds=3600)
    out = _submitted(sim, tmp_path)
    proc = _spawn_collect(out, sim)
    lines, reader = collect_stderr(proc)
    wait_for(lambda: any("still running" in line for line in lines))
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    reader.join(timeout=10)
    assert proc.stderr is not None
    proc.stderr.close()
    assert any("no batch was cancelled" in line for line in lines), lines
    (batch_obj,) = sim.batch_api.batches.values()
    assert batch_obj.status == "in_progress" and "cancelling_at" not in batch_obj.times


def test_the_key_is_never_written(sim: Simulator, tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "first"}])
    out = tmp_path / "out"
    secret = "sk-never-write-me-0123456789"
    env = {"MY_KEY": secret}
    for argv in (
        ["batch", "submit", str(prompts), "-o", str(out)],
        ["batch", "status", str(out)],
        ["batch", "collect", str(out)],
    ):
        ran = CliRunner().invoke(app, [*argv, "--base-url", sim.base_url, "--api-key-env", "MY_KEY"], env=env)
        assert ran.exit_code == 0, ran.stderr
        assert secret not in ran.stdout + ran.stderr
    written = [path for path in out.rglob("*") if path.is_file()]
    assert written and not [path for path in written if secret.encode() in path.read_bytes()]


def test_a_directory_filled_by_batches_is_an_ordinary_out_dir(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    out = _submitted(sim, tmp_path, PROMPTS[:2])
    assert batch("collect", str(out), sim=sim).exit_code == 0
    sent = len(sim.stats.requests)
    results = tmp_path / "results.jsonl"
    ran = run_cli(tmp_path / "p.jsonl", "--results-jsonl", str(results), sim=sim, out=out)
    assert ran.exit_code == 0 and len(sim.stats.requests) == sent  # run sends nothing: the batch did it all
    lines = {line["custom_id"]: line for line in map(json.loads, results.read_text().splitlines())}
    body = ChatCompletion.model_validate(lines["a"]["response"]["body"])
    assert body.choices[0].message.content == expected_text("first")
    assert len(ChatCompletion.model_validate(lines["b"]["response"]["body"]).choices) == 2


def test_a_batch_that_fails_validation_records_why(start_sim: Callable[..., Simulator], tmp_path: Path) -> None:
    sim = start_sim(batch_faults=(parse_batch_fault("fail,times=1"),))
    out = _submitted(sim, tmp_path)
    col = batch("collect", str(out), sim=sim)
    assert col.exit_code == 1
    error = col.manifest()[0]["error"]
    assert error["type"] == "batch_failed" and "invalid_request: simulated failure" in error["message"]
    assert json.loads((out / "a.error.json").read_text())["error"] == error
    again = batch("submit", str(tmp_path / "p.jsonl"), "-o", str(out), sim=sim)
    assert "submitted 1 request in 1 batch" in again.stderr


def test_an_input_file_lost_before_its_upload_is_written_again(sim: Simulator, tmp_path: Path) -> None:
    out = _submitted(sim, tmp_path)
    # As if a submit had been killed after writing its input file, and the file then removed.
    (record,) = [entry for entry in journal(out) if entry["event"] == "file_written"]
    lines = (out / "batches.jsonl").read_text().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if '"file_written"' in line) + 1
    (out / "batches.jsonl").write_text("".join(lines[:cut]))
    assert not (out / ".streamdump-batch" / record["name"]).exists()
    again = batch("submit", str(tmp_path / "p.jsonl"), "-o", str(out), sim=sim)
    assert again.exit_code == 0 and "is gone before it was uploaded" in again.stderr
    assert "submitted 1 request in 1 batch" in again.stderr and events(out).count("released") == 1


@pytest.mark.parametrize("hang", ["upload-hang", "create-hang"])
def test_a_submit_killed_mid_write_run_again_makes_nothing_twice(
    start_sim: Callable[..., Simulator], tmp_path: Path, hang: str
) -> None:
    sim = start_sim(batch_faults=(parse_batch_fault(f"{hang},times=1"),))
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "first"}])
    out = tmp_path / "out"
    environ = {k: v for k, v in os.environ.items() if k not in AMBIENT}
    argv = [sys.executable, "-m", "streamdump", "batch", "submit", str(prompts), "-o", str(out)]
    proc = subprocess.Popen(
        [*argv, "--base-url", sim.base_url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environ
    )
    # The server has done the write and holds the answer back: kill the submit there.
    wait_for(lambda: bool(sim.batch_api.batches if hang == "create-hang" else uploads(sim)))
    proc.kill()
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert "batch_created" not in events(out)
    again = batch("submit", str(prompts), "-o", str(out), sim=sim)
    assert again.exit_code == 0, again.stderr
    assert len(uploads(sim)) == 1 and len(sim.batch_api.batches) == 1
    assert batch("collect", str(out), sim=sim).exit_code == 0 and (out / "a.txt").exists()


def test_batch_commands_take_the_out_dir_lock_and_the_endpoint_from_the_environment(
    sim: Simulator, tmp_path: Path
) -> None:
    out = _submitted(sim, tmp_path)
    env = {"OPENAI_BASE_URL": sim.base_url}
    with hold_lock(out, None):  # a run writing into the out-dir
        for argv in (
            ["submit", str(tmp_path / "p.jsonl"), "-o", str(out)],
            ["collect", str(out)],
            ["cancel", str(out)],
        ):
            refused = CliRunner().invoke(app, ["batch", *argv], env=env)
            assert refused.exit_code == 2 and "already running in this out-dir" in refused.stderr, argv
    collected = CliRunner().invoke(app, ["batch", "collect", str(out)], env=env)
    assert collected.exit_code == 0 and (out / "a.txt").exists()


def test_an_interrupted_create_is_found_past_the_first_page_of_batches(
    start_sim: Callable[..., Simulator], tmp_path: Path
) -> None:
    sim = start_sim(batch_faults=(parse_batch_fault("create-drop,times=1"),))
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "first"}])
    out = tmp_path / "out"
    assert batch("submit", str(prompts), "-o", str(out), "--max-retries", "0", sim=sim).exit_code == 1
    upload = uploads(sim)[0]
    create = json.dumps({"input_file_id": upload.id, "endpoint": "/v1/chat/completions", "completion_window": "24h"})
    for _ in range(150):  # other jobs' batches, created since: ours is on the second page now
        assert sim.batch_api.answer("POST", "/v1/batches", {}, create.encode())[0] == 200
    again = batch("submit", str(prompts), "-o", str(out), sim=sim)
    assert again.exit_code == 0, again.stderr
    ours = [b for b in sim.batch_api.batches.values() if (b.metadata or {}).get("streamdump_key")]
    assert len(ours) == 1 and len(sim.batch_api.batches) == 151
