"""Shards of one prompts file run into one out-dir at once, each with its own manifest and summary;
resume reads every manifest. Real CLI, real HTTP to the simulator."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamdump.cli import app
from streamdump.lock import hold_lock
from streamdump.manifest import iter_entries, load_finished, manifest_paths
from streamdump.shard import Shard, shard_of
from streamdump.simulator import Simulator

from support import Ran, collect_stderr, expected_text, spawn_run, wait_for, write_jsonl

N = 4
ITEMS = 40


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "p.jsonl", [{"id": f"item-{n}", "prompt": f"prompt {n}"} for n in range(ITEMS)])


def test_shards_run_concurrently_into_one_dir_and_every_item_is_recorded_once(
    start_sim: Callable[..., Simulator], prompts: Path, tmp_path: Path
) -> None:
    sim = start_sim(tokens_per_second=100, length=12)
    out = tmp_path / "shared"
    out.mkdir()
    # Start the shards together, whatever the machine's load: the test holds every shard's lock,
    # the runs wait for it (--wait-lock), and are let go at once.
    with contextlib.ExitStack() as held:
        for k in range(1, N + 1):
            held.enter_context(hold_lock(out, Shard(k, N)))
        procs = [
            spawn_run(prompts, out, "--shard", f"{k}/{N}", "-c", "3", "--wait-lock", base_url=sim.base_url)
            for k in range(1, N + 1)
        ]
        readers = [collect_stderr(proc) for proc in procs]
        wait_for(lambda: all(any("--wait-lock" in line for line in lines) for lines, _ in readers))
        assert sim.stats.requests == []
    for proc, (lines, reader) in zip(procs, readers, strict=True):
        assert proc.wait(timeout=120) == 0, "".join(lines)
        reader.join()
        proc.communicate()
    assert sim.stats.peak_streams > 3, "the shards did not overlap"  # each shard alone opens at most 3
    assert [p.name for p in manifest_paths(out)] == [f"manifest.{k}-of-{N}.jsonl" for k in range(1, N + 1)]
    assert not (out / "manifest.jsonl").exists() and not (out / "summary.json").exists()
    # Every id exactly once across the shard manifests, each in the manifest of its own shard.
    seen: Counter[str] = Counter()
    for k, path in enumerate(manifest_paths(out), start=1):
        for entry in iter_entries(path):
            seen[entry["id"]] += 1
            assert shard_of(entry["id"], N) == k
    assert seen == Counter({f"item-{n}": 1 for n in range(ITEMS)})
    finished = load_finished(out)
    assert len(finished) == ITEMS and {f.status for f in finished.values()} == {"ok"}
    # `streamdump status` reads every shard's manifest and sees each item once.
    status = CliRunner().invoke(app, ["status", str(out), "--prompts", str(prompts), "--json"])
    assert status.exit_code == 0, status.stdout + status.stderr
    report = json.loads(status.stdout)
    assert report["items"] == ITEMS and report["statuses"] == {"ok": ITEMS}
    assert report["prompts"]["done"] == ITEMS and report["prompts"]["to_do"] == 0
    assert sorted(report["manifests"]) == [f"manifest.{k}-of-{N}.jsonl" for k in range(1, N + 1)]
    counts = [json.loads((out / f"summary.{k}-of-{N}.json").read_text())["items"] for k in range(1, N + 1)]
    assert sum(counts) == ITEMS and all(counts)
    assert Counter(r.prompt for r in sim.stats.requests) == Counter(f"prompt {n}" for n in range(ITEMS))
    for n in range(ITEMS):
        assert (out / f"item-{n}.txt").read_text() == expected_text(f"prompt {n}")


def test_resume_reads_every_shards_manifest(
    sim: Simulator, run_cli: Callable[..., Ran], prompts: Path, tmp_path: Path
) -> None:
    for k in (1, 2):
        ran = run_cli(prompts, "--shard", f"{k}/{N}", sim=sim)
        assert ran.exit_code == 0, ran.stderr
        assert f"streamdump: shard {k}/{N}: " in ran.stderr
        assert f"(manifest.{k}-of-{N}.jsonl, summary.{k}-of-{N}.json)" in ran.stderr
    done = len(sim.stats.requests)
    # Re-shard with N=2, then run unsharded: only what no shard has done is sent, each once.
    assert run_cli(prompts, "--shard", "1/2", sim=sim).exit_code == 0
    assert run_cli(prompts, sim=sim).exit_code == 0
    assert Counter(r.prompt for r in sim.stats.requests) == Counter(f"prompt {n}" for n in range(ITEMS))
    assert done < ITEMS
    again = run_cli(prompts, sim=sim)
    assert again.exit_code == 0 and len(sim.stats.requests) == ITEMS
    assert again.summary()["this_run"]["skipped_already_done"] == ITEMS


def test_a_shard_sends_only_its_items(sim: Simulator, run_cli: Callable[..., Ran], prompts: Path) -> None:
    ran = run_cli(prompts, "--shard", "3/4", sim=sim)
    assert ran.exit_code == 0, ran.stderr
    mine = {f"prompt {n}" for n in range(ITEMS) if shard_of(f"item-{n}", 4) == 3}
    assert {r.prompt for r in sim.stats.requests} == mine
    summary = json.loads((ran.out / "summary.3-of-4.json").read_text())
    assert summary["items"] == len(mine) and summary["options"]["shard"] == "3/4"


@pytest.mark.parametrize(
    ("args", "env", "k"),
    [
        ([], {"STREAMDUMP_SHARD": "2/4"}, 2),
        (["--shard", "auto/4"], {"JOB_COMPLETION_INDEX": "0"}, 1),
        (["--shard", "auto/4"], {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1"}, 4),
        (["--shard", "1/4"], {"STREAMDUMP_SHARD": "2/4"}, 1),  # the option wins over the variable
    ],
)
def test_shard_from_the_environment(
    sim: Simulator, run_cli: Callable[..., Ran], prompts: Path, args: list[str], env: dict[str, str], k: int
) -> None:
    ran = run_cli(prompts, *args, sim=sim, env=env)
    assert ran.exit_code == 0, ran.stderr
    assert (ran.out / f"manifest.{k}-of-4.jsonl").exists()
    assert {r.prompt for r in sim.stats.requests} == {
        f"prompt {n}" for n in range(ITEMS) if shard_of(f"item-{n}", 4) == k
    }


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--shard", "5/4"], {}, "--shard 5/4: K must be between 1 and N"),
        (["--shard", "two/4"], {}, "expected K/N"),
        (["--shard", "auto/4"], {}, "none of JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID is set"),
        (["--shard", "auto/4"], {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "2"}, "has 2 tasks"),
    ],
)
def test_a_bad_shard_is_a_setup_error(
    sim: Simulator,
    run_cli: Callable[..., Ran],
    prompts: Path,
    args: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    ran = run_cli(prompts, *args, sim=sim, env=env)
    assert ran.exit_code == 2
    assert message in ran.stderr
    assert sim.stats.requests == [] and not ran.out.exists()


def test_a_bad_line_in_another_shard_still_stops_the_run(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    rows: list[dict[str, object] | str] = [{"id": f"item-{n}", "prompt": f"p{n}"} for n in range(20)]
    other = next(n for n in range(20) if shard_of(f"item-{n}", 2) == 2)
    rows[other] = '{"id": "broken", '
    prompts = write_jsonl(tmp_path / "p.jsonl", rows)
    ran = run_cli(prompts, "--shard", "1/2", sim=sim)
    assert ran.exit_code == 2
    assert f"p.jsonl:{other + 1}: invalid JSON" in ran.stderr
    assert sim.stats.requests == [] and not ran.out.exists()


def test_shard_and_a_hostile_id_stay_inside_the_out_dir(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    ids = ["../escape", "/etc/passwd", "a/b", "manifest.1-of-2", "summary.2-of-2"]
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": i, "prompt": i} for i in ids])
    for k in (1, 2):
        assert run_cli(prompts, "--shard", f"{k}/2", sim=sim).exit_code == 0
    out = tmp_path / "out"
    assert {p.parent for p in out.rglob("*")} <= {out, out / ".streamdump-locks"}
    assert len(load_finished(out)) == len(ids)
    assert json.loads((out / "summary.1-of-2.json").read_text())["items"] + json.loads(
        (out / "summary.2-of-2.json").read_text()
    )["items"] == len(ids)
