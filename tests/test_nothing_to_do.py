"""Nothing to do is said plainly: an empty input, a rerun's summary, status's default DIR, and
where a run that ends not ok points."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamdump.cli import app
from streamdump.simulator import Simulator

from support import LENGTH, Ran, write_jsonl


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_an_empty_input_says_no_prompts_and_creates_nothing(
    run_cli: Callable[..., Ran], sim: Simulator, tmp_path: Path, content: str
) -> None:
    prompts = tmp_path / "empty.jsonl"
    prompts.write_text(content)
    ran = run_cli(prompts, sim=sim)
    assert ran.exit_code == 0
    assert f"{prompts}: no prompts" in ran.stderr
    assert not ran.out.exists()
    assert sim.stats.requests == []


def test_an_empty_standard_input_says_no_prompts(run_cli: Callable[..., Ran], sim: Simulator) -> None:
    ran = run_cli("-", sim=sim, input="")
    assert ran.exit_code == 0 and "no prompts" in ran.stderr and not ran.out.exists()


def test_a_rerun_summary_describes_every_item_by_its_latest_line(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    rows = [{"id": "a", "prompt": "a"}, {"id": "b", "prompt": "b"}, {"id": "bad", "prompt": "bad"}]
    prompts = write_jsonl(tmp_path / "p.jsonl", rows)
    first = run_cli(prompts, sim=start_sim(faults=["status=400,match=bad"]))
    assert first.exit_code == 1
    assert first.summary()["statuses"] == {"ok": 2, "failed": 1}
    again = run_cli(prompts, sim=start_sim()).summary()  # only "bad" is sent, and now succeeds
    assert again["items"] == 3
    assert again["statuses"] == {"ok": 3} and again["not_started"] == 0
    assert again["finish_reasons"] == {"stop": 3}
    assert again["tokens"]["completion"] == 3 * LENGTH
    mine = again["this_run"]
    assert mine["statuses"] == {"ok": 1} and mine["skipped_already_done"] == 2
    assert mine["tokens"]["completion"] == LENGTH and mine["finish_reasons"] == {"stop": 1}
    assert mine["stopped"] is None and "wall_s" in mine


def test_the_summary_counts_only_this_inputs_items(sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path) -> None:
    big = write_jsonl(tmp_path / "big.jsonl", [{"id": f"i{n}", "prompt": f"p{n}"} for n in range(5)])
    assert run_cli(big, sim=sim).exit_code == 0
    small = write_jsonl(tmp_path / "small.jsonl", [{"id": "i0", "prompt": "p0"}, {"id": "new", "prompt": "new"}])
    summary = run_cli(small, sim=sim).summary()
    assert summary["items"] == 2 and summary["statuses"] == {"ok": 2}
    assert summary["tokens"]["completion"] == 2 * LENGTH


def test_a_forced_run_stopped_early_still_counts_what_earlier_runs_did(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": f"i{n}", "prompt": f"p{n}"} for n in range(6)])
    assert run_cli(prompts, sim=start_sim()).exit_code == 0
    stopped = run_cli(prompts, "--force", "-c", "1", sim=start_sim(faults=["401"]))
    assert stopped.exit_code == 1
    summary = stopped.summary()
    assert summary["statuses"] == {"ok": 5, "failed": 1}  # five items' latest lines are still the ok ones
    assert summary["this_run"]["statuses"] == {"failed": 1} and summary["this_run"]["not_started"] == 5


def test_status_reads_out_by_default(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "a"}])
    assert run_cli(prompts, sim=sim, out=tmp_path / "out").exit_code == 0
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["statuses"] == {"ok": 1}


def test_a_run_that_ends_not_ok_points_at_status(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "a"}, {"id": "bad", "prompt": "bad"}])
    out = tmp_path / "my out"
    ran = run_cli(prompts, sim=start_sim(faults=["status=400,match=bad"]), out=out)
    assert ran.exit_code == 1
    assert f"`streamdump status '{out}'` shows what is not ok" in ran.stderr.splitlines()[-1]
    fine = run_cli(prompts, sim=start_sim(), out=out)
    assert fine.exit_code == 0 and "streamdump status" not in fine.stderr


def test_a_run_stopped_early_counts_only_this_inputs_items(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    big = write_jsonl(tmp_path / "big.jsonl", [{"id": f"i{n}", "prompt": f"p{n}"} for n in range(5)])
    assert run_cli(big, sim=start_sim()).exit_code == 0
    rows = [{"id": "i0", "prompt": "p0"}] + [{"id": f"new{n}", "prompt": f"new {n}"} for n in range(10)]
    small = write_jsonl(tmp_path / "small.jsonl", rows)
    stopped = run_cli(small, "-c", "1", sim=start_sim(faults=["401"]))
    assert stopped.exit_code == 1
    summary = stopped.summary()
    assert summary["items"] == 11
    assert summary["statuses"] == {"ok": 1, "failed": 1} and summary["not_started"] == 9
    assert summary["tokens"]["completion"] == LENGTH  # i0's, from the first run; big's other items are not counted
