"""Helpers for the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamdump.simulator.script import response_pieces

LENGTH = 12  # the test simulator's default response length


@dataclass
class Ran:
    exit_code: int
    stdout: str
    stderr: str
    out: Path

    def manifest(self) -> list[dict[str, Any]]:
        path = self.out / "manifest.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def by_id(self) -> dict[str, dict[str, Any]]:
        return {entry["id"]: entry for entry in self.manifest()}

    def summary(self) -> dict[str, Any]:
        return json.loads((self.out / "summary.json").read_text())


def write_jsonl(path: Path, rows: list[dict[str, Any] | str]) -> Path:
    path.write_text(
        "".join((row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)) + "\n" for row in rows)
    )
    return path


def expected_text(prompt: str, length: int = LENGTH) -> str:
    return "".join(response_pieces(prompt, length=length))


def expected_reasoning(prompt: str, length: int, choice: int = 0) -> str:
    from streamdump.simulator.replies import reasoning_pieces

    return "".join(reasoning_pieces(prompt, length=length, choice=choice))


def expected_choice(prompt: str, choice: int, length: int = LENGTH) -> str:
    from streamdump.simulator.replies import answer_pieces

    return "".join(answer_pieces(prompt, length=length, choice=choice))


def leftover_parts(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob("*.part"))


AMBIENT = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "STREAMDUMP_SHARD", "JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID")


def spawn_run(
    prompts: Path, out: Path, *args: str, base_url: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``streamdump run`` as a real subprocess (for runs that must overlap, or be killed)."""
    environ = {k: v for k, v in os.environ.items() if k not in AMBIENT}
    return subprocess.Popen(
        [sys.executable, "-m", "streamdump", "run", str(prompts), "-o", str(out), "-q", "--base-url", base_url, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**environ, **(env or {})},
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 30) -> None:
    """Poll a condition (a state, not a duration: the timeout only catches a hang)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def collect_stderr(proc: subprocess.Popen[str]) -> tuple[list[str], threading.Thread]:
    """Read a subprocess's stderr lines as they come (the list fills while it runs)."""
    stream = proc.stderr
    assert stream is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(stream.readline, "")), daemon=True)
    reader.start()
    return lines, reader
