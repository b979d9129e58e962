"""`streamdump batch submit|status|collect|cancel` through the CLI against the simulator's Batch API."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from streamdump.cli import app
from streamdump.simulator import Simulator
from streamdump.simulator.batches import parse_batch_fault
from streamdump.simulator.replies import REFUSAL

from support import Ran, expected_choice, expected_reasoning, expected_text, write_jsonl

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
