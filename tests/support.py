"""Helpers for the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
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
