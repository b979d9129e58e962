"""The benchmark: ``python -m benchmarks.run [--quick]``, from the repository root.

Starts ``streamdump simulate --fast`` in its own process for every client run, runs each scenario
with streamdump and with the tutorial baseline on the same workload, writes
``benchmarks/results/<profile>.json`` and prints the table; the full profile also rewrites the
results section of ``benchmarks/README.md``.  See that README for what each number means.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import scenarios
from .profiles import PROFILES
from .report import machine, table, update_readme

HERE = Path(__file__).resolve().parent
STEPS = ("help", "few", "cpu", "wide", "short", "big", "dry_run")


def run(profile_name: str, work: Path, only: set[str]) -> dict[str, Any]:
    profile = PROFILES[profile_name]
    started = time.monotonic()
    results: dict[str, Any] = {
        "profile": profile_name,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(work),
        "scenarios": {},
    }
    found = results["scenarios"]
    for step in STEPS:
        if only and step not in only:
            continue
        began = time.monotonic()
        print(f"benchmark: {step} ...", flush=True)
        if step == "help":
            found["help"] = scenarios.help_time(profile.help_runs)
        elif step in ("few", "cpu", "wide", "short"):
            found[step] = scenarios.streams(
                step, getattr(profile, step), work, profile.timeout, shared_simulator=profile.shared_simulator
            )
        elif step == "big":
            found.update(scenarios.big_and_resume(profile.big_items, profile.big_concurrency, work, profile.timeout))
        else:
            found["dry_run"] = scenarios.dry_run(profile.dry_items, work, profile.timeout)
        print(f"benchmark: {step} done in {time.monotonic() - began:.1f} s", flush=True)
    results["duration_s"] = round(time.monotonic() - started, 1)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_const", const="quick", dest="profile", help="smaller sizes")
    parser.add_argument("--profile", choices=sorted(PROFILES))
    parser.add_argument("--only", action="append", choices=STEPS, default=[], help="run only these (repeatable)")
    parser.add_argument("--results", type=Path, help="JSON file to write [default: benchmarks/results/PROFILE.json]")
    parser.add_argument("--work-dir", type=Path, help="where prompts and out-dirs go [default: a temporary dir]")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    parser.set_defaults(profile="full")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="streamdump-bench-", dir=args.work_dir))
    try:
        results = run(args.profile, work, set(args.only))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    target = args.results or HERE / "results" / f"{args.profile}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"benchmark: results in {target}")
    if not args.only:
        print(table(results))
        if args.profile == "full":
            update_readme(HERE / "README.md", results)
            print(f"benchmark: table written to {HERE / 'README.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
