"""What a run records when things around the items go wrong: an error or a signal while a finished
item is recorded, a torn manifest line, a summary that cannot be written, lines appended during the
run, and resume and status reading several manifests alike."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from streamdump.cli import app
from streamdump.item import Items
from streamdump.shard import shard_of
from streamdump.simulator import Simulator

from support import Ran, expected_text, write_jsonl


def run_in_thread(args: list[str], timeout: float = 60) -> Any:
    """Invoke the CLI in a thread, so a hang fails the test instead of stalling the suite."""
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", CliRunner().invoke(app, args)), daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "the run hung"
    return box["result"]


def test_an_error_while_recording_a_finished_item_stops_the_run_cleanly(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Items._succeeded

    async def broken(self: Items, job: Any, *args: Any, **kwargs: Any) -> Any:
        if job.id == "i03":
            raise RuntimeError("a bug while recording")
        return await real(self, job, *args, **kwargs)

    monkeypatch.setattr(Items, "_succeeded", broken)
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": f"i{n:02d}", "prompt": f"p{n}"} for n in range(40)])
    out = tmp_path / "out"
    result = run_in_thread(["run", str(prompts), "-o", str(out), "-q", "-c", "4", "--base-url", sim.base_url])
    assert result.exit_code == 1
    assert "internal error while finishing 'i03'" in result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["this_run"]["stopped"] and summary["this_run"]["not_started"] > 0 and summary["not_started"] > 0


def test_lines_added_to_the_prompts_file_during_a_run_wait_for_the_next(
    start_sim: Callable[..., Simulator], tmp_path: Path
) -> None:
    sim = start_sim(tokens_per_second=40, length=8)
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": f"i{n}", "prompt": f"p{n}"} for n in range(6)])
    out = tmp_path / "out"
    box: dict[str, Any] = {}
    args = ["run", str(prompts), "-o", str(out), "-q", "-c", "1", "--base-url", sim.base_url]
    thread = threading.Thread(target=lambda: box.setdefault("result", CliRunner().invoke(app, args)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not sim.stats.requests:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with prompts.open("a") as handle:  # a producer appends work, the last line half written
        handle.write(json.dumps({"id": "late", "prompt": "late"}) + "\n" + '{"id": "torn", "pro')
    thread.join(60)
    result = box["result"]
    assert result.exit_code == 0, result.stderr
    assert json.loads((out / "summary.json").read_text())["items"] == 6
    assert "late" not in {r.prompt for r in sim.stats.requests}


def test_a_torn_manifest_line_does_not_swallow_the_next_runs_first_entry(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    first = write_jsonl(tmp_path / "a.jsonl", [{"id": "a", "prompt": "a"}])
    ran = run_cli(first, sim=sim)
    with open(ran.out / "manifest.jsonl", "a") as handle:
        handle.write('{"id": "a", "status": "fai')  # killed mid-write
    both = write_jsonl(tmp_path / "b.jsonl", [{"id": "a", "prompt": "a"}, {"id": "c", "prompt": "c"}])
    assert run_cli(both, sim=sim).exit_code == 0
    lines = (ran.out / "manifest.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["id"] == "c"
    before = len(sim.stats.requests)
    assert run_cli(both, sim=sim).exit_code == 0
    assert len(sim.stats.requests) == before  # c was recorded: nothing is sent again


def test_status_and_resume_agree_on_the_latest_entry_across_manifests(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    ids = [f"k{n}" for n in range(8)]
    flaky = next(i for i in ids if shard_of(i, 2) == 2)
    sim = start_sim(faults=[f"status=400,times=1,match=prompt {flaky}"])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": i, "prompt": f"prompt {i}"} for i in ids])
    out = tmp_path / "out"
    assert run_cli(prompts, "--shard", "2/2", sim=sim, out=out).exit_code == 1  # flaky failed in shard 2
    assert run_cli(prompts, sim=sim, out=out).exit_code == 0  # an unsharded run does the rest, flaky too
    status = CliRunner().invoke(app, ["status", str(out), "--prompts", str(prompts)])
    assert status.exit_code == 0, status.stdout
    assert run_cli(prompts, sim=sim, out=out).summary()["this_run"]["skipped_already_done"] == len(ids)


def test_a_summary_that_cannot_be_written_ends_the_run_cleanly(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    (out / "summary.json").mkdir(parents=True)  # the summary cannot replace a directory
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "a"}])
    ran = run_cli(prompts, sim=sim, out=out)
    assert ran.exit_code == 1
    assert "cannot write the summary" in ran.stderr
    assert (out / "a.txt").read_text() == expected_text("a")
    assert not (out / "summary.json.tmp").exists()


def test_ctrl_c_while_a_finished_item_is_recorded_keeps_it_ok(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signal is raised from inside the run, at the one moment that matters (the stream is
    complete, its record is being written), while the run's handler is installed: no thread races
    the run, and no signal can reach pytest itself."""
    real = Items._succeeded

    async def slow(self: Items, job: Any, *args: Any, **kwargs: Any) -> Any:
        signal.raise_signal(signal.SIGINT)  # handled by the run's loop on its next turn
        await asyncio.sleep(0.2)  # recording takes a while (a slow disk, a big count)
        return await real(self, job, *args, **kwargs)

    monkeypatch.setattr(Items, "_succeeded", slow)
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "a"}, {"id": "b", "prompt": "b"}])
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(prompts), "-o", str(out), "-q", "-c", "1", "--base-url", sim.base_url])
    assert result.exit_code == 130
    entries = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [(e["id"], e["status"]) for e in entries] == [("a", "ok")]
