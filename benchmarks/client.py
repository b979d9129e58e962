"""One benchmark client run, in its own process: ``python -m benchmarks.client KIND ...``.

KIND is ``streamdump`` (its real runner, through ``launch.run_command`` as the CLI calls it, on its
own event loop: uvloop where installed), ``baseline`` (``baseline.py``: the tutorial shape, on
asyncio's loop) or one of ``floor.FLOORS`` (``floor.py``: the transport alone, on the ``--loop``
given).  Heavy imports happen before the clock starts, so the CPU time reported is the run's own.
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

from .floor import FLOORS

MODEL = "sim-bench"


def _streamdump(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp  # noqa: F401 - imported before the clock starts
    import httpx2  # noqa: F401
    import openai  # noqa: F401
    from openai._vendor import httpx_aiohttp  # noqa: F401

    from streamdump.jobs import Defaults
    from streamdump.launch import Endpoint, run_command
    from streamdump.runstate import RunSettings

    settings = RunSettings(out_dir=args.out, concurrency=args.concurrency, processes=args.processes)
    wall, cpu = time.perf_counter(), _cpu()
    result = run_command(
        str(args.prompts), Defaults(model=MODEL), settings, Endpoint(args.base_url, "sk-bench"), quiet=True
    )
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
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


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (streamdump's worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _baseline(args: argparse.Namespace) -> dict[str, Any]:
    from .baseline import read_prompts, run_baseline

    return _timed(
        lambda: run_baseline(read_prompts(args.prompts), args.out, args.base_url, args.concurrency, MODEL), None
    )


def _floor(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp  # noqa: F401 - imported before the clock starts

    if args.kind.startswith("openai"):
        import openai  # noqa: F401
        from openai._vendor import httpx_aiohttp  # noqa: F401

    from .floor import read_prompts, run_floor

    return _timed(
        lambda: run_floor(args.kind, read_prompts(args.prompts), args.base_url, args.concurrency, MODEL),
        _loop_factory(args.loop),
    )


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


def _timed(
    run: Callable[[], Coroutine[Any, Any, dict[str, Any]]], loop_factory: Callable[[], asyncio.AbstractEventLoop] | None
) -> dict[str, Any]:
    """Run the client's coroutine (reading the prompts included) on a clock; add wall and CPU time."""
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        wall, cpu = time.perf_counter(), time.process_time()
        result = runner.run(run())
        result["wall_s"] = time.perf_counter() - wall
        result["cpu_s"] = time.process_time() - cpu
    return result


KINDS = {"streamdump": _streamdump, "baseline": _baseline, **dict.fromkeys(FLOORS, _floor)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.client")
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("--prompts", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("-c", "--concurrency", type=int, required=True)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio", help="the floors' event loop")
    parser.add_argument("--processes", type=int, default=1, help="streamdump's worker processes")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    result = KINDS[args.kind](args)
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    result["maxrss_mb"] = max(own.ru_maxrss, children.ru_maxrss) / 1024  # children: --processes' workers
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
