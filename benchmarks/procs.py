"""Processes for the benchmark: the simulator, a client run, a timed command. Every one is bounded
in time and killed if it overruns."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def streamdump_command() -> list[str]:
    """The installed ``streamdump`` script next to this Python, else ``python -m streamdump``."""
    script = Path(sys.executable).parent / "streamdump"
    if script.exists():
        return [str(script)]
    found = shutil.which("streamdump")
    return [found] if found else [sys.executable, "-m", "streamdump"]


@dataclass
class Sim:
    base_url: str
    process: subprocess.Popen[bytes]

    def get(self, path: str) -> Any:
        root = self.base_url.removesuffix("/v1")
        with urllib.request.urlopen(root + path, timeout=30) as response:
            return json.loads(response.read())


@contextmanager
def simulator(work: Path, *, tps: float, ttft: float, length: int, timeline: bool = False) -> Iterator[Sim]:
    """``streamdump simulate --fast`` in its own process, on a free port."""
    log = work / f"sim-{time.monotonic_ns()}.log"
    args = [*streamdump_command(), "simulate", "--fast", "--port", "0"]
    args += ["--tokens-per-second", str(tps), "--ttft", str(ttft), "--length", str(length)]
    if timeline:
        args.append("--timeline")
    with open(log, "wb") as err:
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 30
        while not (match := re.search(r"http://\S+/v1", log.read_text())):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the simulator did not start: {log.read_text()}")
            time.sleep(0.02)
        yield Sim(match.group(0), process)
    finally:
        # SIGTERM, not SIGINT: a shell starts background jobs with SIGINT ignored, and the
        # simulator would inherit that (and be waited for until the kill below).
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    cpu_s: float  # user + system, from the kernel's accounting of the child
    maxrss_mb: float


def run_measured(args: list[str], *, timeout: float, cwd: Path = ROOT) -> Finished:
    """Run a command to its end; its wall time, CPU time and peak RSS (``wait4``)."""
    with open(os.devnull, "rb") as stdin:
        started = time.perf_counter()
        process = subprocess.Popen(args, cwd=cwd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    killer = threading.Timer(timeout, process.kill)
    killer.start()
    out: list[bytes] = []
    err: list[bytes] = []
    readers = [
        threading.Thread(target=lambda: out.append(process.stdout.read())),  # type: ignore[union-attr]
        threading.Thread(target=lambda: err.append(process.stderr.read())),  # type: ignore[union-attr]
    ]
    for reader in readers:
        reader.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        killer.cancel()
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join()
    return Finished(
        process.returncode,
        b"".join(out).decode("utf-8", "replace"),
        b"".join(err).decode("utf-8", "replace"),
        wall,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss / 1024,
    )


def run_client(
    kind: str,
    *,
    prompts: Path,
    out: Path,
    base_url: str,
    concurrency: int,
    timeout: float,
    extra: list[str] | None = None,
) -> dict[str, Any]:
    """One ``benchmarks.client`` run; its JSON report, with the process's own figures added."""
    args = [sys.executable, "-m", "benchmarks.client", kind, "--prompts", str(prompts), "--out", str(out)]
    args += ["--base-url", base_url, "-c", str(concurrency), *(extra or [])]
    done = run_measured(args, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} client exited {done.returncode}: {done.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    report["process_wall_s"] = done.wall_s
    report["process_cpu_s"] = done.cpu_s
    return report
