"""The scenarios of the benchmark. Each returns a dict of plain numbers for results.json."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamdump.simulator.script import response_pieces

from .floor import FLOORS
from .procs import Sim, run_client, run_measured, simulator, streamdump_command
from .profiles import Streams
from .watch import DiskWatcher

MODEL = "sim-bench"
VERIFY = 20  # output files whose text is checked against the simulator's, per run
LOOPS = ("asyncio", "uvloop")
FLOOR = "openai-aiohttp/uvloop"  # the floor the targets compare streamdump with (the same clients and loop)


@dataclass(frozen=True, slots=True)
class Client:
    """One client run of a scenario: streamdump (``processes`` > 1: that many worker processes),
    the tutorial baseline, or a floor on an event loop."""

    kind: str
    loop: str = "asyncio"
    processes: int = 1

    @property
    def label(self) -> str:
        if self.kind == "streamdump":
            return "streamdump" if self.processes == 1 else f"streamdump --processes {self.processes}"
        return self.kind if self.kind == "baseline" else f"{self.kind}/{self.loop}"

    @property
    def writes(self) -> bool:
        return self.kind in ("streamdump", "baseline")


STREAMDUMP, BASELINE = Client("streamdump"), Client("baseline")
# Issue 12's table: every floor on both loops at 500 streams; on uvloop at 1,000.
CLIENTS = {
    "cpu": (STREAMDUMP, BASELINE, *(Client(f, loop) for f in FLOORS for loop in LOOPS)),
    "wide": (STREAMDUMP, Client("streamdump", processes=2), BASELINE, *(Client(f, "uvloop") for f in FLOORS)),
    "few": (STREAMDUMP, BASELINE, Client("openai-aiohttp", "uvloop")),
    "short": (STREAMDUMP, BASELINE, Client("openai-aiohttp", "uvloop")),
}


def make_prompts(path: Path, items: int) -> Path:
    """``items`` prompt lines, each asking for a different (deterministic) answer."""
    if not path.exists():
        with open(path, "w", encoding="utf-8") as handle:
            for n in range(items):
                handle.write(f'{{"id": "p{n:07d}", "prompt": "prompt {n}: tell me about streams"}}\n')
    return path


def _prompt(n: int) -> str:
    return f"prompt {n}: tell me about streams"


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def _paths(kind: str, out: Path, n: int) -> tuple[Path, ...]:
    final = out / f"p{n:07d}.txt"
    return (final.with_name(final.name + ".part"), final) if kind == "streamdump" else (final,)


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def _wrong_texts(out: Path, spec: Streams) -> int:
    """How many of a sample of answers differ from what the simulator sent."""
    step = max(1, spec.items // VERIFY)
    wrong = 0
    for n in range(0, spec.items, step):
        path = out / f"p{n:07d}.txt"
        expected = "".join(response_pieces(_prompt(n), length=spec.length))
        if not path.exists() or path.read_text(encoding="utf-8") != expected:
            wrong += 1
    return wrong


def streams(name: str, spec: Streams, work: Path, timeout: float, *, shared_simulator: bool = False) -> dict[str, Any]:
    """Every client of the scenario on the same workload, each against a fresh simulator (or, for
    the test suite's tiny sizes, one simulator for all: starting one per client is most of the time)."""
    prompts = make_prompts(work / f"prompts-{spec.items}.jsonl", spec.items)
    ideal = spec.ttft + spec.length / spec.tps if spec.tps else None
    rounds = math.ceil(spec.items / spec.concurrency)
    row: dict[str, Any] = {"spec": _spec(spec), "clients": []}

    def start() -> contextlib.AbstractContextManager[Sim]:
        return simulator(work, tps=spec.tps, ttft=spec.ttft, length=spec.length, timeline=bool(spec.watch))

    shared = contextlib.ExitStack()
    one = shared.enter_context(start()) if shared_simulator else None
    for client in CLIENTS[name]:
        kind = client.kind
        row["clients"].append(client.label)
        out = work / f"{name}-{_slug(client.label)}"
        load = os.getloadavg()[0]
        with start() if one is None else contextlib.nullcontext(one) as sim:
            before = sim.get("/_sim/stats")["requests"]
            watcher = None
            if spec.watch and client.writes:
                step = max(1, spec.items // spec.watch)
                sample = [(_prompt(n), _paths(kind, out, n)) for n in range(0, spec.items, step)][: spec.watch]
                watcher = DiskWatcher(sample, spec.length, spec.poll)
                watcher.start()
            try:
                report = run_client(
                    kind,
                    prompts=prompts,
                    out=out,
                    base_url=sim.base_url,
                    concurrency=spec.concurrency,
                    timeout=timeout,
                    extra=["--loop", client.loop, "--processes", str(client.processes)],
                )
            finally:
                if watcher is not None:
                    watcher.stop()
            stats = sim.get("/_sim/stats")
            timeline = sim.get("/_sim/timeline") if watcher is not None else None
        stats["requests"] -= before
        durations = report.pop("durations")
        chunks = report["chunks"] if report["chunks"] is not None else report["ok"] * spec.length
        median = statistics.median(durations) if durations else None
        result: dict[str, Any] = {
            "load_before": round(load, 2),
            "items": report["items"],
            "ok": report["ok"],
            "failed": report["failed"],
            "first_error": report["first_error"],
            "wrong_texts": _wrong_texts(out, spec) if client.writes else None,
            "wall_s": round(report["wall_s"], 3),
            "wall_ideal_s": round(rounds * ideal, 3) if ideal else None,
            "requests_per_s": round(report["items"] / report["wall_s"], 1),
            "median_duration_s": None if median is None else round(median, 4),
            "p90_duration_s": _round(_percentile(durations, 0.9)),
            "ideal_duration_s": ideal,
            "median_vs_ideal": round(median / ideal, 3) if ideal and median else None,
            "chunks": chunks,
            "cpu_s": round(report["cpu_s"], 3),
            "cpu_per_chunk_us": round(report["cpu_s"] / chunks * 1e6, 2) if chunks else None,
            "cpu_per_request_ms": round(report["cpu_s"] / max(1, report["items"]) * 1e3, 3),
            "maxrss_mb": round(report["maxrss_mb"], 1),
            "sim": {k: stats[k] for k in ("requests", "peak_streams", "late_ticks", "max_lateness_ms", "cpu_s")},
        }
        if watcher is not None and timeline is not None:
            delays, alone, expected = watcher.delays(timeline["tick_times"], timeline["joined"])
            result["disk"] = {
                "sampled_files": spec.watch,
                "pieces_expected": expected,
                "pieces_seen": len(delays),
                "pieces_seen_alone": alone,
                "p50_ms": _ms(_percentile(delays, 0.5)),
                "p90_ms": _ms(_percentile(delays, 0.9)),
                "p99_ms": _ms(_percentile(delays, 0.99)),
                "max_ms": _ms(max(delays) if delays else None),
                "within_100ms": round(sum(d <= 0.1 for d in delays) / len(delays), 4) if delays else None,
                "poll_ms": spec.poll * 1000,
                "polls": watcher.polls,
            }
        row[client.label] = result
    shared.close()
    return row


def _spec(spec: Streams) -> dict[str, Any]:
    return {field: getattr(spec, field) for field in spec.__slots__}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _run_args(prompts: Path, out: Path, base_url: str, concurrency: int) -> list[str]:
    args = [*streamdump_command(), "run", str(prompts), "-o", str(out), "--base-url", base_url]
    return [*args, "-c", str(concurrency), "-m", MODEL, "-q"]


def big_and_resume(items: int, concurrency: int, work: Path, timeout: float) -> dict[str, Any]:
    """A long run through the real CLI (peak RSS), then the same command again (resume)."""
    prompts = make_prompts(work / f"prompts-{items}.jsonl", items)
    out = work / "big-streamdump"
    with simulator(work, tps=0, ttft=0, length=4) as sim:
        load = os.getloadavg()[0]
        done = run_measured(_run_args(prompts, out, sim.base_url, concurrency), timeout=timeout)
        sent = sim.get("/_sim/stats")["requests"]
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    big = {
        "load_before": round(load, 2),
        "items": items,
        "concurrency": concurrency,
        "exit_code": done.returncode,
        "ok": summary.get("statuses", {}).get("ok", 0),
        "requests": sent,
        "wall_s": round(done.wall_s, 2),
        "requests_per_s": round(items / done.wall_s, 1),
        "cpu_s": round(done.cpu_s, 2),
        "maxrss_mb": round(done.maxrss_mb, 1),
    }
    with simulator(work, tps=0, ttft=0, length=4) as sim:
        again = run_measured(_run_args(prompts, out, sim.base_url, concurrency), timeout=timeout)
        resent = sim.get("/_sim/stats")["requests"]
    resume = {
        "items": items,
        "exit_code": again.returncode,
        "requests": resent,
        "wall_s": round(again.wall_s, 2),
        "cpu_s": round(again.cpu_s, 2),
        "maxrss_mb": round(again.maxrss_mb, 1),
    }
    return {"big": big, "resume": resume}


def dry_run(items: int, work: Path, timeout: float) -> dict[str, Any]:
    """Peak RSS of ``streamdump run --dry-run`` over ``items`` prompts, if the option exists."""
    helped = run_measured([*streamdump_command(), "run", "--help"], timeout=60)
    if "--dry-run" not in helped.stdout:
        return {"skipped": "streamdump run has no --dry-run yet (issue 4); nothing measured"}
    prompts = make_prompts(work / f"prompts-{items}.jsonl", items)
    with simulator(work, tps=0, ttft=0, length=4) as sim:
        args = [*_run_args(prompts, work / "dry-streamdump", sim.base_url, 200), "--dry-run"]
        done = run_measured(args, timeout=timeout)
        sent = sim.get("/_sim/stats")["requests"]
    return {
        "items": items,
        "exit_code": done.returncode,
        "requests": sent,
        "wall_s": round(done.wall_s, 2),
        "maxrss_mb": round(done.maxrss_mb, 1),
    }


def help_time(runs: int) -> dict[str, Any]:
    """``streamdump --help``: median wall time of ``runs`` runs, and whether it imports openai."""
    walls = []
    for _ in range(runs):
        done = run_measured([*streamdump_command(), "--help"], timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"streamdump --help exited {done.returncode}: {done.stderr}")
        walls.append(done.wall_s)
    traced = run_measured([sys.executable, "-X", "importtime", "-m", "streamdump", "--help"], timeout=60)
    heavy = r"\|\s+(openai|httpx2|aiohttp|uvloop|tiktoken)(?:\.|\s*$)"
    imported = sorted(set(re.findall(heavy, traced.stderr, re.MULTILINE)))
    return {
        "runs": runs,
        "median_s": round(statistics.median(walls), 3),
        "max_s": round(max(walls), 3),
        "heavy_imports": imported,
    }
