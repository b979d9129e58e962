"""One benchmark client run, in its own process: ``python -m benchmarks.client KIND ...``.

KIND is ``streamdump`` (its real runner, through ``launch.run_command`` as the CLI calls it),
``baseline`` (``baseline.py``: the tutorial shape) or ``floor`` (``floor.py``: the transport
alone).  Heavy imports happen before the clock starts, so the CPU time reported is the run's own.
Prints one JSON object on standard output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

MODEL = "sim-bench"


def _streamdump(args: argparse.Namespace) -> dict[str, Any]:
    import httpx2  # noqa: F401 - imported before the clock starts
    import openai  # noqa: F401

    from streamdump.jobs import Defaults
    from streamdump.launch import Endpoint, run_command
    from streamdump.runstate import RunSettings

    settings = RunSettings(out_dir=args.out, concurrency=args.concurrency)
    wall, cpu = time.perf_counter(), time.process_time()
    result = run_command(
        str(args.prompts), Defaults(model=MODEL), settings, Endpoint(args.base_url, "sk-bench"), quiet=True
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    durations, chunks = [], 0
    for line in (args.out / "manifest.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry["status"] == "ok":
            durations.append(entry["duration_s"])
            chunks += entry["usage"]["completion_tokens"] or 0
    failed = result.total - result.statuses.get("ok", 0) - result.skipped
    return {
        "items": result.total,
        "ok": result.statuses.get("ok", 0),
        "failed": failed,
        "first_error": None,
        "chunks": chunks,
        "durations": durations,
        "wall_s": wall,
        "cpu_s": cpu,
    }


def _baseline(args: argparse.Namespace) -> dict[str, Any]:
    from .baseline import read_prompts, run_baseline

    return _timed(lambda: run_baseline(read_prompts(args.prompts), args.out, args.base_url, args.concurrency, MODEL))


def _floor(args: argparse.Namespace) -> dict[str, Any]:
    from .baseline import read_prompts
    from .floor import run_floor

    return _timed(lambda: run_floor(read_prompts(args.prompts), args.base_url, args.concurrency, MODEL))


def _timed(run: Callable[[], Coroutine[Any, Any, dict[str, Any]]]) -> dict[str, Any]:
    """Run the client's coroutine (reading the prompts included) on a clock; add wall and CPU time."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = asyncio.run(run())
    result["wall_s"] = time.perf_counter() - wall
    result["cpu_s"] = time.process_time() - cpu
    return result


KINDS = {"streamdump": _streamdump, "baseline": _baseline, "floor": _floor}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.client")
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("--prompts", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("-c", "--concurrency", type=int, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    result = KINDS[args.kind](args)
    result["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
