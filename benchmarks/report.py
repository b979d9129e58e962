"""From results to verdicts: the issue's targets, a Markdown table, and the README section."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

START, END = "<!-- results:start -->", "<!-- results:end -->"


@dataclass(frozen=True, slots=True)
class Verdict:
    target: str
    measured: str
    baseline: str
    met: bool | None  # None: not measured


def machine(work: Path) -> dict[str, Any]:
    cpu = ""
    try:
        cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text()).group(1)  # type: ignore[union-attr]
    except (OSError, AttributeError):
        cpu = platform.processor()
    try:
        fs = subprocess.run(["df", "--output=fstype", str(work)], capture_output=True, text=True, check=False)
        fstype = fs.stdout.split()[-1] if fs.returncode == 0 else "?"
    except OSError:
        fstype = "?"
    versions = {}
    for name in ("openai", "httpx2", "aiohttp", "uvloop", "aiofiles", "orjson"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "out_dir_filesystem": fstype,
        "packages": versions,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _fmt(value: Any, unit: str = "") -> str:
    return "n/a" if value is None else f"{value}{unit}"


def _alone(disk: dict[str, Any]) -> str:
    return f"{disk.get('pieces_seen_alone')}/{disk.get('pieces_expected')} alone, p99 {_fmt(disk.get('p99_ms'), ' ms')}"


FLOOR = "openai-aiohttp/uvloop"  # the floor the targets name: streamdump's own clients and loop
P2 = "streamdump --processes 2"


def _ran(run: dict[str, Any] | None) -> bool:
    return run is not None and "skipped" not in run


def verdicts(results: dict[str, Any]) -> list[Verdict]:
    s = results["scenarios"]
    out: list[Verdict] = []
    cpu = s["cpu"]
    n = cpu["spec"]["concurrency"]
    mine, base, floor = cpu["streamdump"], cpu["baseline"], cpu[FLOOR]
    per, fper, bper = mine["cpu_per_chunk_us"], floor["cpu_per_chunk_us"], base["cpu_per_chunk_us"]
    out.append(
        Verdict(
            f"client CPU per chunk at {n} streams: <= 25 µs, <= 1.25x the {FLOOR} floor, >= 5x below the baseline",
            f"{_fmt(per, ' µs')} ({_ratio(per, fper)} the floor's {_fmt(fper, ' µs')}; "
            f"baseline/streamdump {_ratio(bper, per)})",
            f"{_fmt(bper, ' µs')}",
            None not in (per, fper, bper)
            and per <= 25
            and per <= 1.25 * fper
            and bper >= 5 * per
            and mine["failed"] == 0,
        )
    )
    wide = s["wide"]
    n = wide["spec"]["concurrency"]
    mine, base, floor, two = wide["streamdump"], wide["baseline"], wide[FLOOR], wide.get(P2)
    out.append(
        Verdict(
            f"{n} streams at {wide['spec']['tps']:g} tokens/s, one process: wall <= 1.10x the {FLOOR} floor's",
            f"{mine['wall_s']} s vs the floor's {floor['wall_s']} s ({_ratio(mine['wall_s'], floor['wall_s'])}; "
            f"ideal {mine['wall_ideal_s']} s), {mine['failed']} failed",
            f"{base['wall_s']} s",
            mine["wall_s"] <= 1.10 * floor["wall_s"] and mine["failed"] == 0,
        )
    )
    out.append(
        Verdict(
            f"{n} streams with --processes 2: median duration <= 1.10x ideal, no failures",
            f"{_fmt(two['median_vs_ideal'], 'x')}, {two['failed']} failed (one process: "
            f"{_fmt(mine['median_vs_ideal'], 'x')}; floor {_fmt(floor['median_vs_ideal'], 'x')})"
            if _ran(two)
            else "not run: " + (two or {}).get("skipped", "missing"),
            f"{_fmt(base['median_vs_ideal'], 'x')}, {base['failed']} failed",
            None
            if not _ran(two)
            else two["median_vs_ideal"] is not None and two["median_vs_ideal"] <= 1.10 and two["failed"] == 0,
        )
    )
    disk = (two or {}).get("disk", {}) if _ran(two) else {}
    one_disk, base_disk = mine.get("disk", {}), base.get("disk", {})
    out.append(
        Verdict(
            f"{n} streams with --processes 2: 99% of pieces readable within 100 ms",
            f"p99 {_fmt(disk.get('p99_ms'), ' ms')} ({_fmt(disk.get('within_100ms'))} within 100 ms; one process: "
            f"p99 {_fmt(one_disk.get('p99_ms'), ' ms')})"
            if _ran(two)
            else f"not run (one process: p99 {_fmt(one_disk.get('p99_ms'), ' ms')})",
            f"p99 {_fmt(base_disk.get('p99_ms'), ' ms')} ({_fmt(base_disk.get('within_100ms'))})",
            None
            if not _ran(two)
            else disk.get("p99_ms") is not None
            and disk["p99_ms"] <= 100
            and disk["pieces_seen"] == disk["pieces_expected"],
        )
    )
    few = s["few"]
    mine, base = few["streamdump"].get("disk", {}), few["baseline"].get("disk", {})
    out.append(
        Verdict(
            f"{few['spec']['concurrency']} streams: each piece written as it arrives (seen alone by a reader)",
            _alone(mine),
            _alone(base),
            bool(mine.get("pieces_expected")) and mine["pieces_seen_alone"] >= 0.99 * mine["pieces_expected"],
        )
    )
    short = s["short"]
    mine, base, floor = short["streamdump"], short["baseline"], short[FLOOR]
    out.append(
        Verdict(
            f"2-token responses at concurrency {short['spec']['concurrency']}, one process: >= 800 requests/s",
            f"{mine['requests_per_s']} req/s ({mine['cpu_per_request_ms']} ms CPU each; {FLOOR} floor "
            f"{floor['requests_per_s']} req/s, {floor['cpu_per_request_ms']} ms)",
            f"{base['requests_per_s']} req/s ({base['cpu_per_request_ms']} ms CPU each)",
            mine["requests_per_s"] >= 800 and mine["failed"] == 0,
        )
    )
    big = s["big"]
    out.append(
        Verdict(
            f"{big['items']:,} prompts at concurrency {big['concurrency']}: peak RSS <= 250 MB",
            f"{big['maxrss_mb']} MB ({big['requests_per_s']} req/s, exit {big['exit_code']})",
            "not run",
            big["maxrss_mb"] <= 250 and big["exit_code"] == 0 and big["ok"] == big["items"],
        )
    )
    dry = s["dry_run"]
    out.append(
        Verdict(
            f"dry run of {s['dry_run'].get('items', 'n/a')} prompts: peak RSS <= 300 MB",
            dry["skipped"]
            if "skipped" in dry
            else f"{dry['maxrss_mb']} MB, {dry['requests']} sent, exit {dry['exit_code']}",
            "not run",
            None if "skipped" in dry else dry["maxrss_mb"] <= 300 and dry["requests"] == 0 and dry["exit_code"] == 0,
        )
    )
    helped = s["help"]
    out.append(
        Verdict(
            "`streamdump --help` within 0.3 s, without importing openai or aiohttp",
            f"median {helped['median_s']} s, heavy imports: {', '.join(helped['heavy_imports']) or 'none'}",
            "",
            helped["median_s"] <= 0.3 and not helped["heavy_imports"],
        )
    )
    resume = s["resume"]
    out.append(
        Verdict(
            f"resume of a finished {resume['items']:,}-item run: nothing sent, <= 5 s",
            f"{resume['wall_s']} s, {resume['requests']} sent, exit {resume['exit_code']}",
            "",
            resume["wall_s"] <= 5 and resume["requests"] == 0 and resume["exit_code"] == 0,
        )
    )
    return out


def _ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or not b else f"{a / b:.2f}x"


def table(results: dict[str, Any]) -> str:
    rows = ["| target | streamdump | baseline (tutorial) | verdict |", "| --- | --- | --- | --- |"]
    for v in verdicts(results):
        met = "not measured" if v.met is None else "met" if v.met else "**not met**"
        rows.append(f"| {v.target} | {v.measured} | {v.baseline} | {met} |")
    lines = [*rows, ""]
    lines.append(
        "| scenario | client | wall s (ideal) | median stream s (ideal) | CPU µs/chunk | CPU ms/request "
        "| peak RSS MB | disk delay p50/p99 ms | failed |"
    )
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for key in ("cpu", "wide", "few", "short"):
        scenario = results["scenarios"][key]
        spec = scenario["spec"]
        label = f"{key}: {spec['items']} × {spec['length']} pieces, c={spec['concurrency']}"
        for client in scenario["clients"]:
            r = scenario[client]
            if not _ran(r):
                lines.append(f"| {label} | {client} | {r['skipped']} |  |  |  |  |  |  |")
                continue
            disk = r.get("disk")
            delay = f"{disk['p50_ms']} / {disk['p99_ms']}" if disk else ""
            lines.append(
                f"| {label} | {client} | {r['wall_s']} ({_fmt(r['wall_ideal_s'])}) | {_fmt(r['median_duration_s'])} "
                f"({_fmt(r['ideal_duration_s'])}) | {_fmt(r['cpu_per_chunk_us'])} | {r['cpu_per_request_ms']} "
                f"| {r['maxrss_mb']} | {delay} | {r['failed']} |"
            )
    return "\n".join(lines)


def machine_line(results: dict[str, Any]) -> str:
    m = results["machine"]
    pkgs = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    return (
        f"Profile `{results['profile']}`, run {results['started_at']} in {results['duration_s']} s on "
        f"{m['cores']} cores ({m['cpu']}), {m['platform']}, Python {m['python']}, {pkgs}; out-dirs on "
        f"{m['out_dir_filesystem']}; load average at start {m['load_average_at_start']}."
    )


def update_readme(readme: Path, results: dict[str, Any]) -> None:
    text = readme.read_text()
    section = f"{START}\n{machine_line(results)}\n\n{table(results)}\n{END}"
    text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: section, text, flags=re.DOTALL)
    readme.write_text(text)
