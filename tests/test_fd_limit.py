"""File descriptors: the run works out what it needs, raises its soft limit that far, refuses with
both numbers when it cannot, and records every item that ran if the limit is hit anyway."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from streamdump import _constants as C
from streamdump.fdlimit import descriptors_needed
from streamdump.simulator import Simulator

from support import write_jsonl

if sys.platform == "win32":  # pragma: no cover
    pytest.skip("RLIMIT_NOFILE is POSIX", allow_module_level=True)
else:
    import resource

# streamdump under an open-files limit of SOFT/HARD; with HOG, all but HOG descriptors are taken
# before the run starts (as a library that holds many files would), so the limit is hit anyway.
WITH_NOFILE_LIMIT = """
import os, resource, sys
soft, hard, hog = (int(sys.argv.pop(1)) for _ in range(3))
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
from streamdump.cli import main
import openai, httpx2, streamdump.launch  # imported before the descriptors run out
if hog:
    held = []
    try:
        while True:
            held.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    for fd in held[-hog:]:
        os.close(fd)
sys.argv[0] = "streamdump"
main()
"""


def run_limited(
    prompts: Path, out: Path, sim: Simulator, *args: str, soft: int, hard: int, hog: int = 0
) -> subprocess.CompletedProcess[str]:
    argv = ["run", str(prompts), "-o", str(out), "-q", "--base-url", sim.base_url, *args]
    command = [sys.executable, "-c", WITH_NOFILE_LIMIT, str(soft), str(hard), str(hog), *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_descriptors_needed_counts_each_stream_and_a_margin() -> None:
    assert descriptors_needed(1) == C.FDS_PER_ITEM + C.FDS_MARGIN
    assert descriptors_needed(500) == 500 * C.FDS_PER_ITEM + C.FDS_MARGIN
    assert descriptors_needed(10, simulator=True) == 10 * (C.FDS_PER_ITEM + 1) + C.FDS_MARGIN


def test_a_hard_limit_too_low_refuses_the_run_naming_both_numbers(sim: Simulator, tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": f"i{n}", "prompt": f"p{n}"} for n in range(3)])
    ran = run_limited(prompts, tmp_path / "out", sim, "-c", "500", soft=256, hard=256)
    assert ran.returncode == 2, ran.stderr
    assert f"needs {descriptors_needed(500)} open files" in ran.stderr
    assert "at most 256" in ran.stderr and "lower -c to 64" in ran.stderr
    assert sim.stats.requests == []
    assert not (tmp_path / "out").exists()


def test_a_soft_limit_too_low_is_raised_within_the_hard_limit(
    start_sim: Callable[..., Simulator], tmp_path: Path
) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 4096:
        pytest.skip(f"the hard limit on open files here is {hard}")
    sim = start_sim(ttft=0.05)  # streams overlap: every worker holds its connection at once
    items = 200
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": f"i{n}", "prompt": f"p{n}"} for n in range(items)])
    ran = run_limited(prompts, tmp_path / "out", sim, "-c", str(items), soft=128, hard=4096)
    assert ran.returncode == 0, ran.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["statuses"] == {"ok": items}


def test_when_the_limit_is_hit_anyway_every_item_that_ran_is_recorded(sim: Simulator, tmp_path: Path) -> None:
    items = 40
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": f"i{n}", "prompt": f"p{n}"} for n in range(items)])
    need = descriptors_needed(items)
    out = tmp_path / "out"
    ran = run_limited(prompts, out, sim, "-c", str(items), "--max-retries", "0", soft=need, hard=need, hog=20)
    assert ran.returncode == 1, ran.stderr
    assert "Traceback" not in ran.stderr
    assert "Too many open files" in ran.stderr
    sent = {request.prompt for request in sim.stats.requests}
    assert sent, "some items ran"
    entries = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    recorded = {entry["id"] for entry in entries}
    assert len(recorded) == len(entries)
    assert {f"i{prompt[1:]}" for prompt in sent} <= recorded
    assert any(entry["status"] == "failed" for entry in entries)
    summary = json.loads((out / "summary.json").read_text())
    assert sum(summary["statuses"].values()) + summary["not_started"] == items
    assert sum(summary["statuses"].values()) == len(entries)
