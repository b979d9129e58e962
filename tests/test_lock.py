"""The out-dir lock: overlapping runs are refused (exit 2, nothing sent) or wait; a killed run's lock
does not block the next one; shards of the same N go ahead together."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from streamdump.lock import GATE, LOCK_DIR, hold_lock
from streamdump.shard import Shard, parse_shard
from streamdump.simulator import Simulator

from support import Ran, collect_stderr, expected_text, spawn_run, wait_for, write_jsonl

PROMPTS = [{"id": f"i{n:02d}", "prompt": f"prompt {n}"} for n in range(8)]


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "p.jsonl", PROMPTS)


def shard_args(spec: str | None) -> list[str]:
    return [] if spec is None else ["--shard", spec]


def shard_of_spec(spec: str | None) -> Shard | None:
    return None if spec is None else parse_shard(spec, {})


@pytest.mark.parametrize(
    ("held", "mine", "expected"),
    [
        ("1/2", "1/2", "shard 1/2 is already running in this out-dir"),
        (None, None, "a run without --shard is already running in this out-dir"),
        (None, "1/2", "a run without --shard is running in this out-dir"),
        ("1/2", None, "shard 1/2 is running in this out-dir"),
        ("2/3", "1/2", "shard 2/3 is running in this out-dir"),
        ("1/1", None, "shard 1/1 is running in this out-dir"),
    ],
)
def test_an_overlapping_run_is_refused_before_anything_is_sent(
    sim: Simulator,
    run_cli: Callable[..., Ran],
    prompts: Path,
    tmp_path: Path,
    held: str | None,
    mine: str | None,
    expected: str,
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with hold_lock(out, shard_of_spec(held)):
        ran = run_cli(prompts, *shard_args(mine), sim=sim)
    assert ran.exit_code == 2
    assert expected in ran.stderr
    assert f"(pid {os.getpid()} on {socket.gethostname()}, since " in ran.stderr
    assert "nothing was sent (wait for it with --wait-lock)" in ran.stderr
    assert sim.stats.requests == []
    assert sorted(p.name for p in out.iterdir()) == [LOCK_DIR]  # no manifest, no summary, no part file


def test_other_shards_of_the_same_n_go_ahead(
    sim: Simulator, run_cli: Callable[..., Ran], prompts: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with hold_lock(out, Shard(2, 3)), hold_lock(out, Shard(3, 3)):
        ran = run_cli(prompts, "--shard", "1/3", sim=sim)
    assert ran.exit_code == 0, ran.stderr
    summary = json.loads((ran.out / "summary.1-of-3.json").read_text())
    assert len(sim.stats.requests) == summary["items"] > 0


def test_a_lock_is_released_when_the_run_ends(
    sim: Simulator, run_cli: Callable[..., Ran], prompts: Path, tmp_path: Path
) -> None:
    assert run_cli(prompts, "--shard", "1/2", sim=sim).exit_code == 0
    assert run_cli(prompts, "--shard", "1/2", "--force", sim=sim).exit_code == 0
    assert run_cli(prompts, "--force", sim=sim).exit_code == 0  # and an unsharded run after it
    holder = json.loads((tmp_path / "out" / LOCK_DIR / "1-of-2.lock").read_text())
    assert holder["shard"] == "1/2" and holder["host"] == socket.gethostname()


def test_a_concurrent_run_is_refused_and_a_killed_runs_lock_does_not_block(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], prompts: Path, tmp_path: Path
) -> None:
    sim = start_sim(tokens_per_second=40, length=30)
    out = tmp_path / "out"
    first = spawn_run(prompts, out, "-c", "2", base_url=sim.base_url)
    try:
        wait_for(lambda: out.exists() and any(p.stat().st_size > 0 for p in out.glob("*.txt.part")))
        second = run_cli(prompts, sim=sim)
        assert second.exit_code == 2
        assert f"a run without --shard is already running in this out-dir (pid {first.pid} on" in second.stderr
        first.kill()  # kill -9: the kernel drops the lock with the process
        first.communicate(timeout=10)
        assert max(r.nth for r in sim.stats.requests) == 1, "the refused run sent requests"
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate(timeout=10)
    third = run_cli(prompts, "-c", "4", sim=sim)
    assert third.exit_code == 0, third.stderr
    for n in range(len(PROMPTS)):
        assert (out / f"i{n:02d}.txt").read_text() == expected_text(f"prompt {n}", 30)


def test_wait_lock_waits_for_the_holder_then_runs(sim: Simulator, prompts: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    held = hold_lock(out, Shard(1, 2))
    held.__enter__()
    try:
        waiter = spawn_run(prompts, out, "--shard", "1/2", "--wait-lock", base_url=sim.base_url)
        lines, reader = collect_stderr(waiter)
        wait_for(lambda: any("waiting for it to finish (--wait-lock)" in line for line in lines))
        assert "shard 1/2 is already running in this out-dir" in lines[0]
        assert waiter.poll() is None and sim.stats.requests == []
    finally:
        held.__exit__(None, None, None)
    assert waiter.wait(timeout=60) == 0, "".join(lines)
    reader.join()
    waiter.communicate()
    assert len(sim.stats.requests) == json.loads((out / "summary.1-of-2.json").read_text())["items"] > 0


def blocked_on(path: Path) -> int:
    """How many processes wait for a flock on ``path`` (Linux's /proc/locks: ``->`` lines)."""
    inode = f":{path.stat().st_ino} "
    return sum(1 for line in Path("/proc/locks").read_text().splitlines() if "->" in line and inode in line)


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux's /proc/locks")
@pytest.mark.parametrize(("first", "second"), [("1/2", None), (None, "1/2"), ("1/2", "1/3"), ("2/2", "2/2")])
def test_two_overlapping_runs_starting_at_the_same_instant_do_not_both_go_ahead(
    start_sim: Callable[..., Simulator], prompts: Path, tmp_path: Path, first: str | None, second: str | None
) -> None:
    # Both runs are made to arrive at the gate before either can pass it: the test holds the gate
    # until the kernel shows both blocked on it. Exactly one must then go ahead.
    sim = start_sim(tokens_per_second=40, length=30)
    out = tmp_path / "out"
    (out / LOCK_DIR).mkdir(parents=True)
    gate = out / LOCK_DIR / GATE
    fd = os.open(gate, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        procs = [spawn_run(prompts, out, *shard_args(spec), base_url=sim.base_url) for spec in (first, second)]
        wait_for(lambda: blocked_on(gate) == 2)
    finally:
        os.close(fd)
    codes = []
    for proc in procs:
        _, stderr = proc.communicate(timeout=60)
        codes.append(proc.returncode)
        if proc.returncode == 2:
            assert "is already running in this out-dir" in stderr or "is running in this out-dir" in stderr
    assert sorted(codes) == [0, 2]
    assert max(r.nth for r in sim.stats.requests) == 1  # nothing was sent twice


def test_a_filesystem_without_locks_gets_a_warning_and_the_run_goes_ahead(
    sim: Simulator, run_cli: Callable[..., Ran], prompts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    ran = run_cli(prompts, sim=sim)
    assert ran.exit_code == 0, ran.stderr
    assert "warning: cannot lock" in ran.stderr and "No locks available" in ran.stderr
    assert len(sim.stats.requests) == len(PROMPTS)
