"""--max-cost end to end: requests start only within the cap, the spend is recorded and reported."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from streamdump.simulator import Simulator

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
