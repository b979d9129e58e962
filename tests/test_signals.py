"""Cancellation, kill -9 and resume, with the CLI as a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from streamdump.launch import SignalHandler
from streamdump.simulator import Simulator

from support import expected_text, write_jsonl

# Every test here runs on both HTTP transports (--http aiohttp and httpx).
pytestmark = pytest.mark.usefixtures("each_transport")

LENGTH = 30
ITEMS = 12


def start_run(sim: Simulator, prompts: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamdump",
            "run",
            str(prompts),
            "-o",
            str(out),
            "-c",
            "4",
            "-q",
            "--base-url",
            sim.base_url,
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def mid_run(out: Path) -> bool:
    """The first wave is done and the second is streaming."""
    done = len(list(out.glob("*.txt")))
    growing = [p for p in out.glob("*.txt.part") if p.stat().st_size > 0]
    return done >= 4 and len(growing) >= 2


def manifest_lines(out: Path) -> list[str]:
    return (out / "manifest.jsonl").read_text().splitlines()


@pytest.fixture
def slow_sim(start_sim: Callable[..., Simulator]) -> Simulator:
    return start_sim(tokens_per_second=40, length=LENGTH)


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "p.jsonl", [{"id": f"i{n:02d}", "prompt": f"prompt {n}"} for n in range(ITEMS)])


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_cleanly_and_rerun_finishes_the_rest(
    slow_sim: Simulator, prompts: Path, tmp_path: Path, signum: int, code: int
) -> None:
    out = tmp_path / "out"
    proc = start_run(slow_sim, prompts, out)
    wait_for(lambda: out.exists() and mid_run(out))
    proc.send_signal(signum)
    sent = time.monotonic()
    _, stderr = proc.communicate(timeout=10)
    assert time.monotonic() - sent < 5
    assert proc.returncode == code, stderr
    entries = [json.loads(line) for line in manifest_lines(out)]
    statuses = Counter(e["status"] for e in entries)
    assert statuses["ok"] >= 4 and statuses["cancelled"] >= 2
    for entry in entries:
        if entry["status"] == "cancelled":
            part = out / (entry["file"] + ".part")
            assert part.exists(), "a cancelled stream keeps its part file"
            assert expected_text(f"prompt {int(entry['id'][1:])}", LENGTH).startswith(part.read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["this_run"]["stopped"] and summary["statuses"]["cancelled"] == statuses["cancelled"]
    # Every stream was closed: the server sees no open connection once the client is gone.
    wait_for(lambda: slow_sim.stats.open_connections == 0, timeout=5)

    done_before = {e["id"] for e in entries if e["status"] == "ok"}
    requests_before = len(slow_sim.stats.requests)
    rerun = start_run(slow_sim, prompts, out)
    _, stderr = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, stderr
    redone = Counter(r.prompt for r in slow_sim.stats.requests[requests_before:])
    assert not any(f"prompt {int(i[1:])}" in redone for i in done_before), "finished items were redone"
    assert sum(redone.values()) == ITEMS - len(done_before)
    for n in range(ITEMS):
        assert (out / f"i{n:02d}.txt").read_text() == expected_text(f"prompt {n}", LENGTH)


class _Result:
    signal: int | None = None


class _Runner:
    """Stands in for the Runner: records what the handler asks of it."""

    def __init__(self) -> None:
        self.result = _Result()
        self.cancelled: list[int] = []

    def cancel(self, signum: int, reason: str) -> None:
        self.result.signal = signum
        self.cancelled.append(signum)


class _Loop:
    def __init__(self) -> None:
        self.later: list[tuple[float, object, tuple[object, ...]]] = []

    def call_later(self, delay: float, callback: object, *args: object) -> None:
        self.later.append((delay, callback, args))


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_first_signal_stops_cleanly_with_a_safety_net_second_exits_at_once(signum: int, code: int) -> None:
    runner, loop, exits = _Runner(), _Loop(), []
    handler = SignalHandler(runner, loop, exit=exits.append, deadline=4.5)  # type: ignore[arg-type]
    handler(signum)
    assert runner.cancelled == [signum] and exits == []
    assert loop.later == [(4.5, exits.append, (code,))]  # exits anyway if cleanup overruns
    handler(signum)
    assert exits == [code] and runner.cancelled == [signum]  # at once, no second cleanup


def test_kill_9_leaves_no_incomplete_txt_and_rerun_completes(
    slow_sim: Simulator, prompts: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    proc = start_run(slow_sim, prompts, out)
    wait_for(lambda: out.exists() and mid_run(out))
    proc.kill()
    proc.communicate(timeout=10)
    for path in out.glob("*.txt"):
        n = int(path.stem[1:])
        assert path.read_text() == expected_text(f"prompt {n}", LENGTH), f"{path.name} is incomplete"
    lines = manifest_lines(out)
    for line in lines[:-1]:
        json.loads(line)
    rerun = start_run(slow_sim, prompts, out)
    _, stderr = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, stderr
    for n in range(ITEMS):
        assert (out / f"i{n:02d}.txt").read_text() == expected_text(f"prompt {n}", LENGTH)


def test_torn_last_manifest_line_is_ignored(start_sim: Callable[..., Simulator], tmp_path: Path) -> None:
    sim = start_sim()
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "a"}, {"id": "b", "prompt": "b"}])
    out = tmp_path / "out"
    first = start_run(sim, prompts, out)
    first.communicate(timeout=30)
    assert first.returncode == 0
    with open(out / "manifest.jsonl", "a") as handle:
        handle.write('{"id": "b", "status": "fai')  # a run killed mid-write
    rerun = start_run(sim, prompts, out)
    _, stderr = rerun.communicate(timeout=30)
    assert rerun.returncode == 0, stderr
    assert len(sim.stats.requests) == 2


# Runs streamdump with SIGTERM sent to itself at one chosen moment: as an item's complete answer
# files are being closed and renamed (the close is under way when the handler runs).
SIGNAL_AS_FILES_COMPLETE = """
import os, signal, sys
from streamdump import partset
real_close = partset.PartSet.close

async def close(self, *, complete):
    if complete:
        os.kill(os.getpid(), signal.SIGTERM)
    await real_close(self, complete=complete)

partset.PartSet.close = close
from streamdump.cli import main
sys.argv[0] = "streamdump"
main()
"""


def test_a_signal_while_the_answer_files_complete_records_the_item_ok(sim: Simulator, tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "a"}, {"id": "b", "prompt": "b"}])
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    argv = ["run", str(prompts), "-o", str(out), "-c", "1", "-q", "--base-url", sim.base_url]
    proc = subprocess.run(
        [sys.executable, "-c", SIGNAL_AS_FILES_COMPLETE, *argv], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 143, proc.stderr
    assert (out / "a.txt").read_text() == expected_text("a")
    entries = [json.loads(line) for line in manifest_lines(out)]
    assert [(e["id"], e["status"]) for e in entries] == [("a", "ok")]
    assert json.loads((out / "summary.json").read_text())["statuses"] == {"ok": 1}
