"""The benchmark harness runs end to end on tiny sizes and writes well-formed results.

No timing is asserted here: the numbers mean something only on an idle machine, at full size.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_benchmark_runs_and_reports(tmp_path: Path) -> None:
    results = tmp_path / "smoke.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--profile", "smoke", "--results", str(results)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(results.read_text())
    assert found["profile"] == "smoke" and found["machine"]["cores"]
    scenarios = found["scenarios"]
    # Every floor of issue 12's table, on both loops at 500 streams, beside streamdump and the baseline.
    floors = ("openai-httpx", "openai-aiohttp", "aiohttp", "protocol")
    assert set(scenarios["cpu"]["clients"]) == {
        "streamdump",
        "baseline",
        *(f"{floor}/{loop}" for floor in floors for loop in ("asyncio", "uvloop")),
    }
    assert {f"{floor}/uvloop" for floor in floors} | {"streamdump --processes 2"} <= set(scenarios["wide"]["clients"])
    for key in ("few", "cpu", "wide", "short"):
        for kind in scenarios[key]["clients"]:
            run = scenarios[key][kind]
            assert run["failed"] == 0 and run["wrong_texts"] in (0, None), (key, kind, run)
            assert run["ok"] == run["items"] == scenarios[key]["spec"]["items"]
            assert run["chunks"] == run["items"] * scenarios[key]["spec"]["length"]
            assert run["cpu_s"] > 0 and run["maxrss_mb"] > 0 and run["sim"]["requests"] == run["items"]
    for key in ("few", "wide"):
        disk = scenarios[key]["streamdump"]["disk"]
        assert disk["pieces_seen"] == disk["pieces_expected"] > 0
        assert disk["p99_ms"] is not None
    assert scenarios["big"]["exit_code"] == 0 and scenarios["big"]["ok"] == scenarios["big"]["items"]
    assert scenarios["resume"]["exit_code"] == 0 and scenarios["resume"]["requests"] == 0
    assert scenarios["help"]["heavy_imports"] == []
    assert "skipped" in scenarios["dry_run"] or scenarios["dry_run"]["requests"] == 0
    # The table lists every target, streamdump's figure beside the baseline's.
    verdicts = ("| met |", "| **not met** |", "| not measured |")
    assert sum(done.stdout.count(verdict) for verdict in verdicts) == 10
