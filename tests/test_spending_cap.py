"""--max-cost end to end: requests start only within the cap, the spend is recorded and reported."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamdump.cli import app
from streamdump.simulator import Simulator
from streamdump.tokens import counter_for

from support import Ran, write_jsonl


def prompts(tmp_path: Path, count: int = 4) -> Path:
    return write_jsonl(tmp_path / "p.jsonl", [{"id": f"p{n}", "prompt": f"prompt {n}"} for n in range(count)])


@pytest.mark.parametrize(
    "args",
    [
        ["--max-cost", "1"],
        ["--max-cost", "1", "--price-in", "0.15"],
        ["--max-cost", "1", "--price-out", "0.6"],
        ["--max-cost", "1", "--price-cached-in", "0.07"],
    ],
)
def test_a_cap_without_prices_stops_before_anything_is_sent(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, args: list[str]
) -> None:
    ran = run_cli(prompts(tmp_path), *args, sim=sim)
    assert ran.exit_code == 2
    assert "--max-cost needs --price-in and --price-out" in ran.stderr
    assert sim.stats.requests == []
    assert not ran.out.exists()


DOLLAR_A_TOKEN = ["--price-in", "0", "--price-out", "1000000"]  # $1 per output token: easy sums


def test_prices_alone_count_the_spend_per_item_and_in_total(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    ran = run_cli(prompts(tmp_path, 3), "--price-in", "1000000", "--price-out", "2000000", sim=sim)
    assert ran.exit_code == 0, ran.stderr
    for entry in ran.manifest():
        usage = entry["usage"]
        assert entry["cost_usd"] == pytest.approx(usage["prompt_tokens"] + 2 * usage["completion_tokens"])
    total = sum(entry["cost_usd"] for entry in ran.manifest())
    assert ran.summary()["this_run"]["cost_usd"] == pytest.approx(total)
    assert ran.summary()["options"]["price_out"] == 2000000
    assert f"(${total:,.2f})" in ran.stderr


def test_without_prices_nothing_is_priced(sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path) -> None:
    ran = run_cli(prompts(tmp_path, 1), sim=sim)
    assert "cost_usd" not in ran.manifest()[0]
    assert ran.summary()["this_run"]["cost_usd"] is None


@pytest.mark.parametrize("concurrency", ["1", "4"])
def test_the_run_stops_before_a_request_that_could_pass_the_cap(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, concurrency: str
) -> None:
    # Each request may cost $20 (max_tokens 20) and costs $12 (the simulator's 12 pieces): after
    # three, $36 are spent and a fourth could reach $56.
    path = prompts(tmp_path, 5)
    args = [*DOLLAR_A_TOKEN, "--max-tokens", "20", "--max-cost", "50", "-c", concurrency]
    ran = run_cli(path, *args, sim=sim)
    assert ran.exit_code == 1
    assert "stopped early: spending cap reached ($36.00 of $50.00)" in ran.stderr
    assert len(sim.stats.requests) == 3
    summary = ran.summary()
    assert summary["statuses"] == {"ok": 3}
    assert summary["not_started"] == 2
    assert summary["this_run"]["cost_usd"] == pytest.approx(36)
    assert [entry["cost_usd"] for entry in ran.manifest()] == [12, 12, 12]
    # A rerun goes on where it stopped, with a cap of its own.
    again = run_cli(path, *args, sim=sim)
    assert again.exit_code == 0, again.stderr
    assert len(sim.stats.requests) == 5
    assert again.summary()["this_run"]["cost_usd"] == pytest.approx(24)


def test_a_request_larger_than_the_cap_is_never_sent(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    ran = run_cli(prompts(tmp_path, 2), *DOLLAR_A_TOKEN, "--max-tokens", "20", "--max-cost", "10", sim=sim)
    assert ran.exit_code == 1
    assert "stopped early: spending cap reached ($0.0000 of $10.00)" in ran.stderr
    assert sim.stats.requests == []
    assert ran.manifest() == []
    assert ran.summary()["not_started"] == 2


def test_a_request_without_a_limit_reserves_the_expected_output(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    args = [*DOLLAR_A_TOKEN, "--max-cost", "30"]
    assert run_cli(prompts(tmp_path, 1), *args, sim=sim).exit_code == 1  # 1,000 tokens expected: $1,000
    assert sim.stats.requests == []
    ran = run_cli(prompts(tmp_path, 1), *args, "--expected-output-tokens", "25", sim=sim)
    assert ran.exit_code == 0, ran.stderr


def test_a_refused_http_request_costs_nothing(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(faults=["503,times=1"])
    args = [*DOLLAR_A_TOKEN, "--max-tokens", "20", "--max-cost", "20", "--backoff-base", "0"]
    ran = run_cli(prompts(tmp_path, 1), *args, sim=sim)
    assert ran.exit_code == 0, ran.stderr  # the retry fits: the 503 cost nothing
    entry = ran.manifest()[0]
    assert (entry["attempts"], entry["cost_usd"]) == (2, 12)


def test_a_retry_that_no_longer_fits_fails_its_item_with_cost_cap(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    # $1 a prompt token: a request may cost its prompt + 10%; a dropped stream cost its prompt.
    prompt = counter_for("gpt-4o-mini").messages([{"role": "user", "content": "prompt 0"}])
    worst = math.ceil(prompt * 1.1)
    sim = start_sim(faults=["drop,after=2,times=1"])
    args = ["--price-in", "1000000", "--price-out", "0", "--max-cost", str(prompt + worst - 1), "--backoff-base", "0"]
    ran = run_cli(prompts(tmp_path, 2), *args, "-c", "1", sim=sim)
    assert ran.exit_code == 1
    entry = ran.by_id()["p0"]
    assert (entry["status"], entry["error"]["type"], entry["attempts"]) == ("failed", "cost_cap", 1)
    assert "a retry would not fit within --max-cost" in entry["error"]["message"]
    assert entry["cost_usd"] == prompt
    assert len(sim.stats.requests) == 1
    assert f"stopped early: spending cap reached (${prompt:.2f} of ${prompt + worst - 1:.2f})" in ran.stderr
    assert ran.summary()["not_started"] == 1


def test_the_spend_shows_in_plain_progress_lines_and_in_status(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    argv = ["run", str(prompts(tmp_path, 2)), "-o", str(out), "--base-url", sim.base_url, "--progress-interval", "0"]
    ran = CliRunner().invoke(app, [*argv, *DOLLAR_A_TOKEN, "--max-cost", "100", "--max-tokens", "20"])
    assert ran.exit_code == 0, ran.stderr
    assert ", $24.00 of $100.00 spent, " in ran.stderr
    status = CliRunner().invoke(app, ["status", str(out)])
    assert "spent: $24.00 (all runs, as the runs counted it)" in status.stdout
    priced = CliRunner().invoke(app, ["status", str(out), "--price-in", "0", "--price-out", "2000000", "--json"])
    assert json.loads(priced.stdout)["cost_usd"] == pytest.approx(48)
    half = CliRunner().invoke(app, ["status", str(out), "--price-in", "1"])
    assert half.exit_code == 2 and "both --price-in and --price-out" in half.stderr
