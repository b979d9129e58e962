"""--processes N: one run across N worker processes, with one manifest, one summary, one exit code,
and every run-wide rule (-c, --max-failures, a 429 pause, a 401 stop, the stream_options fallback,
a signal) holding across the processes."""

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

from streamdump.processes import available_cpus, parse_processes, part_of, worker_settings
from streamdump.runstate import RunSettings
from streamdump.shard import Shard
from streamdump.simulator import Simulator

from support import Ran, expected_text, wait_for, write_jsonl


def ids_for(part: int, count: int, *, n: int = 2, prefix: str = "i") -> list[str]:
    """``count`` ids that worker ``part`` (of ``n``) takes."""
    found: list[str] = []
    number = 0
    while len(found) < count:
        candidate = f"{prefix}{number}"
        if part_of(candidate, n) == part:
            found.append(candidate)
        number += 1
    return found


def rows(ids: list[str]) -> list[dict[str, str] | str]:
    return [{"id": item, "prompt": f"prompt {item}"} for item in ids]


# -- which worker, how many ------------------------------------------------------------------
def test_the_split_is_stable_even_and_independent_of_the_shard() -> None:
    ids = [f"item-{n}" for n in range(4000)]
    parts = Counter(part_of(item, 4) for item in ids)
    assert set(parts) == {0, 1, 2, 3} and min(parts.values()) > 800  # about 1000 each
    assert [part_of(item, 4) for item in ids[:50]] == [part_of(item, 4) for item in ids[:50]]
    # Inside one shard (all its ids share the shard's hash), the items still spread over the workers.
    shard = Shard(2, 4)
    inside = Counter(part_of(item, 2) for item in ids if shard.contains(item))
    assert set(inside) == {0, 1} and min(inside.values()) > 350


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("max 100000", None), ("150000 100000", 2), ("100000 100000", 1), ("50000 100000", 1)],
)
def test_auto_counts_the_cpus_a_container_quota_allows(tmp_path: Path, cpu_max: str, expected: int | None) -> None:
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    affinity = len(os.sched_getaffinity(0))
    want = affinity if expected is None else min(affinity, expected)
    nowhere = tmp_path / "no-proc-cgroup"
    assert available_cpus(cgroup=tmp_path, own=nowhere) == want == parse_processes("auto", cgroup=tmp_path, own=nowhere)


def test_auto_finds_a_quota_on_the_processs_own_cgroup_or_above(tmp_path: Path) -> None:
    # Outside a container, /sys/fs/cgroup is the whole hierarchy: this process's cgroup (from
    # /proc/self/cgroup) or a slice above it carries the limit.
    own = tmp_path / "self-cgroup"
    own.write_text("0::/system.slice/job.service\n")
    (tmp_path / "system.slice" / "job.service").mkdir(parents=True)
    (tmp_path / "system.slice" / "job.service" / "cpu.max").write_text("max 100000\n")
    (tmp_path / "system.slice" / "cpu.max").write_text("100000 100000\n")
    assert available_cpus(cgroup=tmp_path, own=own) == 1


def test_auto_reads_a_cgroup_v1_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cpus(cgroup=tmp_path, own=tmp_path / "none") == 1


def test_each_worker_gets_an_even_share_of_the_rates_and_no_failure_limit_of_its_own(tmp_path: Path) -> None:
    settings = RunSettings(out_dir=tmp_path, concurrency=10, rpm=90.0, tpm=30000.0, max_failures=3, processes=3)
    share = worker_settings(settings, 1, 3)
    assert (share.rpm, share.tpm, share.max_failures, share.processes) == (30.0, 10000.0, None, 1)
    assert worker_settings(RunSettings(out_dir=tmp_path), 0, 2).rpm is None


@pytest.mark.parametrize("spec", ["0", "-1", "two", ""])
def test_a_bad_process_count_is_refused_before_anything_is_sent(
    run_cli: Callable[..., Ran], sim: Simulator, tmp_path: Path, spec: str
) -> None:
    ran = run_cli(write_jsonl(tmp_path / "p.jsonl", rows(["a"])), "--processes", spec, sim=sim)
    assert ran.exit_code == 2 and "--processes" in ran.stderr
    assert sim.stats.requests == []


# -- one run, several processes --------------------------------------------------------------
def test_a_run_in_two_processes_writes_one_manifest_summary_and_results_file(
    run_cli: Callable[..., Ran], sim: Simulator, tmp_path: Path
) -> None:
    ids = [f"i{n}" for n in range(24)]
    results = tmp_path / "results.jsonl"
    ran = run_cli(
        write_jsonl(tmp_path / "p.jsonl", rows(ids)),
        "--processes",
        "2",
        "-c",
        "4",
        "--results-jsonl",
        str(results),
        sim=sim,
    )
    assert ran.exit_code == 0, ran.stderr
    assert sorted(p.name for p in ran.out.glob("manifest*")) == ["manifest.jsonl"]
    assert sorted(ran.by_id()) == sorted(ids) and len(ran.manifest()) == len(ids)
    for item in ids:
        assert (ran.out / f"{item}.txt").read_text() == expected_text(f"prompt {item}")
    summary = ran.summary()
    assert summary["statuses"] == {"ok": 24} and summary["options"]["processes"] == 2
    assert sorted(json.loads(line)["custom_id"] for line in results.read_text().splitlines()) == sorted(ids)
    assert "24 items: 24 ok" in ran.stderr
    assert sim.stats.peak_streams <= 4  # -c is the whole run's


def test_one_shard_across_two_processes_keeps_the_shards_own_files(
    run_cli: Callable[..., Ran], sim: Simulator, tmp_path: Path
) -> None:
    ids = [f"i{n}" for n in range(30)]
    mine = sorted(item for item in ids if Shard(1, 2).contains(item))
    ran = run_cli(write_jsonl(tmp_path / "p.jsonl", rows(ids)), "--shard", "1/2", "--processes", "2", sim=sim)
    assert ran.exit_code == 0, ran.stderr
    assert sorted(p.name for p in ran.out.glob("*.json*")) == ["manifest.1-of-2.jsonl", "summary.1-of-2.json"]
    lines = (ran.out / "manifest.1-of-2.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == mine
    assert {part_of(item, 2) for item in mine} == {0, 1}  # both workers had a share of the shard


def test_a_run_resumes_after_a_different_number_of_processes(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    ids = [f"i{n}" for n in range(12)]
    prompts = write_jsonl(tmp_path / "p.jsonl", rows(ids))
    flaky = start_sim(faults=["status=500,match=prompt i3"])
    first = run_cli(prompts, "--processes", "2", "-c", "4", "--max-retries", "0", sim=flaky)
    assert first.exit_code == 1
    assert {e["id"] for e in first.manifest() if e["status"] == "failed"} == {"i3"}
    for count in ("3", "1"):
        fine = start_sim()
        again = run_cli(prompts, "--processes", count, "-c", "4", sim=fine)
        assert again.exit_code == 0, again.stderr
        assert [r.prompt for r in fine.stats.requests] == (["prompt i3"] if count == "3" else [])
        assert again.summary()["statuses"] == {"ok": 12}


def test_max_failures_counts_the_whole_run(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(faults=["status=400"], ttft=0.05)
    ids = ids_for(0, 10) + ids_for(1, 10)
    ran = run_cli(
        write_jsonl(tmp_path / "p.jsonl", rows(sorted(ids))),
        "--processes",
        "2",
        "-c",
        "2",
        "--max-failures",
        "2",
        sim=sim,
    )
    assert ran.exit_code == 1
    failed = [e for e in ran.manifest() if e["status"] == "failed"]
    # Two failures stop the run; an item already in flight may fail too. Per process, it would be 4 or more.
    assert 2 <= len(failed) <= 3
    assert "--max-failures 2" in ran.summary()["this_run"]["stopped"]
    assert ran.summary()["not_started"] == 20 - len(failed)


def test_an_auth_failure_stops_every_worker(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(faults=["status=401"], ttft=0.05)
    ran = run_cli(
        write_jsonl(tmp_path / "p.jsonl", rows([f"i{n}" for n in range(30)])), "--processes", "2", "-c", "4", sim=sim
    )
    assert ran.exit_code == 1
    assert len(sim.stats.requests) <= 4 + 2  # what was in flight, not the 30 items
    assert "check the API key" in ran.summary()["this_run"]["stopped"]


def test_a_429_pauses_every_worker(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    # Worker 0 gets the 429 at once; worker 1 is mid-stream (ttft 1 s) and must wait for the pause
    # before its next request, though its own requests never saw a 429.
    sim = start_sim(faults=["429,retry_after=2,match=limited"], ttft=1.0)
    limited = ids_for(0, 1, prefix="limited")[0]
    others = ids_for(1, 2, prefix="other")
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": limited, "prompt": "limited"}, *rows(others)])
    ran = run_cli(prompts, "--processes", "2", "-c", "2", "--max-retries", "0", sim=sim)
    assert ran.exit_code == 1  # the limited item had no retries left
    requests = sim.stats.requests
    pause_at = next(r.at for r in requests if r.prompt == "limited")
    second_other = [r.at for r in requests if r.prompt.startswith("prompt other")][1]
    assert second_other - pause_at >= 1.9


def test_the_stream_options_fallback_reaches_every_worker(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(reject_stream_options=True)
    # Worker 0 takes the first two items; worker 1's first item is handed out after one of them ends.
    ids = ids_for(0, 2) + ids_for(1, 4)
    ran = run_cli(write_jsonl(tmp_path / "p.jsonl", rows(ids)), "--processes", "2", "-c", "2", sim=sim)
    assert ran.exit_code == 0, ran.stderr
    asked = [r.prompt for r in sim.stats.requests if "stream_options" in (r.body or {})]
    assert sorted(asked) == sorted(f"prompt {item}" for item in ids[:2])  # worker 1 never asked with it


# -- signals and the parent's death ----------------------------------------------------------
def spawn_in_own_group(prompts: Path, out: Path, base_url: str, *args: str) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    return subprocess.Popen(
        [sys.executable, "-m", "streamdump", "run", str(prompts), "-o", str(out), "-q", "--base-url", base_url, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
        start_new_session=True,  # a process group of its own, as a terminal's job is
    )


def workers_of(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def slow_sim(start_sim: Callable[..., Simulator]) -> Simulator:
    return start_sim(tokens_per_second=20, length=200)


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


@needs_proc
def test_ctrl_c_at_the_terminal_stops_every_process_once(slow_sim: Simulator, tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", rows([f"i{n}" for n in range(8)]))
    out = tmp_path / "out"
    proc = spawn_in_own_group(prompts, out, slow_sim.base_url, "--processes", "2", "-c", "4")
    wait_for(lambda: slow_sim.stats.open_streams >= 4 and len(workers_of(proc.pid)) == 2)
    workers = workers_of(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)  # the whole group, as the terminal does
    sent = time.monotonic()
    _, stderr = proc.communicate(timeout=15)
    assert time.monotonic() - sent < 5
    assert proc.returncode == 130, stderr
    entries = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert Counter(e["status"] for e in entries) == {"cancelled": 4}
    assert json.loads((out / "summary.json").read_text())["not_started"] == 4
    assert not any(alive(pid) for pid in workers)


@needs_proc
def test_sigterm_to_the_run_stops_its_workers(slow_sim: Simulator, tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", rows([f"i{n}" for n in range(8)]))
    out = tmp_path / "out"
    proc = spawn_in_own_group(prompts, out, slow_sim.base_url, "--processes", "2", "-c", "4")
    wait_for(lambda: slow_sim.stats.open_streams >= 4 and len(workers_of(proc.pid)) == 2)
    workers = workers_of(proc.pid)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 143, stderr
    statuses = Counter(json.loads(line)["status"] for line in (out / "manifest.jsonl").read_text().splitlines())
    assert statuses == {"cancelled": 4}
    assert not any(alive(pid) for pid in workers)


@needs_proc
def test_killing_the_parent_leaves_no_worker_running(slow_sim: Simulator, tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", rows([f"i{n}" for n in range(8)]))
    proc = spawn_in_own_group(prompts, tmp_path / "out", slow_sim.base_url, "--processes", "2", "-c", "4")
    wait_for(lambda: slow_sim.stats.open_streams >= 4 and len(workers_of(proc.pid)) == 2)
    workers = workers_of(proc.pid)
    proc.kill()
    proc.communicate(timeout=15)
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=10)
    wait_for(lambda: slow_sim.stats.open_connections == 0, timeout=10)


@needs_proc
def test_workers_take_no_signal_from_the_terminal(start_sim: Callable[..., Simulator], tmp_path: Path) -> None:
    sim = start_sim(tokens_per_second=20, length=40)
    prompts = write_jsonl(tmp_path / "p.jsonl", rows([f"i{n}" for n in range(8)]))
    out = tmp_path / "out"
    proc = spawn_in_own_group(prompts, out, sim.base_url, "--processes", "2", "-c", "4")
    wait_for(lambda: sim.stats.open_streams >= 4 and len(workers_of(proc.pid)) == 2)
    for pid in workers_of(proc.pid):  # only the parent may act on a Ctrl-C
        os.kill(pid, signal.SIGINT)
        os.kill(pid, signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    statuses = Counter(json.loads(line)["status"] for line in (out / "manifest.jsonl").read_text().splitlines())
    assert statuses == {"ok": 8}
