"""A shared out-dir: no write follows a link someone planted there, and the link's target is
never touched. An item whose file is in the way fails; the run's own files refuse the run."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from streamdump.simulator import Simulator

from support import Ran, expected_text, write_jsonl

PRECIOUS = "precious: not streamdump's to write\n"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "elsewhere" / "victim.txt"
    path.parent.mkdir()
    path.write_text(PRECIOUS)
    return path


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "a"}, {"id": "b", "prompt": "b"}])


def plant(out: Path, name: str, target: Path) -> Path:
    link = out / name
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    return link


def test_a_link_at_an_items_part_file_fails_that_item_only(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, prompts: Path, victim: Path
) -> None:
    out = tmp_path / "out"
    plant(out, "b.txt.part", victim)
    plant(out, "b.txt.part.dangling", tmp_path / "elsewhere" / "new.txt")
    ran = run_cli(prompts, sim=sim, out=out)
    assert ran.exit_code == 1
    assert victim.read_text() == PRECIOUS
    assert (out / "a.txt").read_text() == expected_text("a")
    b = ran.by_id()["b"]
    assert (b["status"], b["attempts"], b["error"]["type"]) == ("failed", 1, "planted_link")
    assert "a symbolic link is in the way" in b["error"]["message"]
    assert "b.txt.part" in ran.stderr and "a symbolic link is in the way" in ran.stderr
    assert not (out / "b.txt").exists()
    assert not (tmp_path / "elsewhere" / "new.txt").exists()


def test_a_hard_link_at_an_items_part_file_is_replaced_not_written_through(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, prompts: Path, victim: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    os.link(victim, out / "b.txt.part")
    ran = run_cli(prompts, sim=sim, out=out)
    assert ran.exit_code == 0, ran.stderr
    assert victim.read_text() == PRECIOUS
    assert (out / "b.txt").read_text() == expected_text("b")


@pytest.mark.parametrize("name", ["b.error.json.tmp", "summary.json.tmp"])
def test_a_link_at_a_temporary_files_name_is_never_written_through(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path, victim: Path, name: str
) -> None:
    sim = start_sim(faults=["status=400,match=b"])
    out = tmp_path / "out"
    plant(out, name, victim)
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "a"}, {"id": "b", "prompt": "b"}])
    ran = run_cli(prompts, sim=sim, out=out)
    assert ran.exit_code == 1
    assert victim.read_text() == PRECIOUS
    assert json.loads((out / "b.error.json").read_text())["error"]["status"] == 400
    assert ran.summary()["statuses"] == {"ok": 1, "failed": 1}
    assert not (out / "b.error.json").is_symlink() and not (out / "summary.json").is_symlink()


@pytest.mark.parametrize(
    "name",
    ["manifest.jsonl", ".streamdump-locks/run.lock", ".streamdump-locks/gate", ".streamdump-locks/1-of-2.lock"],
)
def test_a_link_at_one_of_the_runs_own_files_refuses_the_run(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, prompts: Path, victim: Path, name: str
) -> None:
    out = tmp_path / "out"
    plant(out, name, victim)
    ran = run_cli(prompts, sim=sim, out=out)
    assert ran.exit_code == 2
    assert "a symbolic link is in the way" in ran.stderr and name.split("/")[-1] in ran.stderr
    assert victim.read_text() == PRECIOUS
    assert sim.stats.requests == []


def test_a_hard_link_at_the_manifest_or_a_lock_file_refuses_the_run(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, prompts: Path, victim: Path
) -> None:
    for name in ("manifest.jsonl", ".streamdump-locks/run.lock"):
        out = tmp_path / f"out-{name.replace('/', '-')}"
        (out / name).parent.mkdir(parents=True)
        os.link(victim, out / name)
        ran = run_cli(prompts, sim=sim, out=out)
        assert ran.exit_code == 2
        assert "a hard link" in ran.stderr
        assert victim.read_text() == PRECIOUS
    assert sim.stats.requests == []


def test_a_link_in_place_of_the_lock_dir_refuses_the_run(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, prompts: Path
) -> None:
    out = tmp_path / "out"
    elsewhere = tmp_path / "elsewhere-dir"
    elsewhere.mkdir()
    plant(out, ".streamdump-locks", elsewhere)
    ran = run_cli(prompts, sim=sim, out=out)
    assert ran.exit_code == 2
    assert ".streamdump-locks" in ran.stderr and "a symbolic link is in the way" in ran.stderr
    assert list(elsewhere.iterdir()) == []
    assert sim.stats.requests == []


def test_a_link_at_the_results_files_part_refuses_the_run(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, prompts: Path, victim: Path
) -> None:
    results = tmp_path / "results" / "batch.jsonl"
    plant(results.parent, "batch.jsonl.part", victim)
    ran = run_cli(prompts, "--results-jsonl", str(results), sim=sim)
    assert ran.exit_code == 2
    assert "batch.jsonl.part" in ran.stderr and "a symbolic link is in the way" in ran.stderr
    assert victim.read_text() == PRECIOUS
    assert sim.stats.requests == []


def test_the_out_dir_itself_may_be_a_symlink(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, prompts: Path
) -> None:
    real = tmp_path / "real-out"
    real.mkdir()
    (tmp_path / "out").symlink_to(real)
    results = tmp_path / "linked-results"
    results.symlink_to(real)
    ran = run_cli(prompts, "--results-jsonl", str(results / "r.jsonl"), sim=sim, out=tmp_path / "out")
    assert ran.exit_code == 0, ran.stderr
    assert (real / "a.txt").read_text() == expected_text("a")
    assert len((real / "r.jsonl").read_text().splitlines()) == 2


def test_a_link_in_place_of_a_finished_answer_is_no_answer_and_is_never_read(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, prompts: Path, victim: Path
) -> None:
    out = tmp_path / "out"
    assert run_cli(prompts, sim=sim, out=out).exit_code == 0
    (out / "a.txt").unlink()
    plant(out, "a.txt", victim)
    results = tmp_path / "results.jsonl"
    before = len(sim.stats.requests)
    ran = run_cli(prompts, "--results-jsonl", str(results), sim=sim, out=out)
    assert ran.exit_code == 0, ran.stderr
    assert [r.prompt for r in sim.stats.requests[before:]] == ["a"]  # redone, not skipped
    assert not (out / "a.txt").is_symlink() and (out / "a.txt").read_text() == expected_text("a")
    assert victim.read_text() == PRECIOUS
    assert "precious" not in results.read_text()


def test_where_no_directory_can_be_held_open_files_are_written_by_path(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, prompts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows has no *at() calls: the same run, by path (the lock is a no-op there; here it is not)."""
    monkeypatch.setattr("streamdump.safefs._AT", False)
    results = tmp_path / "r.jsonl"
    ran = run_cli(prompts, "--results-jsonl", str(results), sim=sim)
    assert ran.exit_code == 0, ran.stderr
    assert (ran.out / "b.txt").read_text() == expected_text("b")
    assert [entry["status"] for entry in ran.manifest()] == ["ok", "ok"]
    assert ran.summary()["statuses"] == {"ok": 2} and len(results.read_text().splitlines()) == 2
