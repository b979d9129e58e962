"""The manifest: one JSON line per finished item, appended as items finish; read back on resume.

Reading tolerates a torn last line (a run killed mid-write) and any line that is not a JSON
object: such lines are skipped.  The latest line for an id wins.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .output import MANIFEST


@dataclass(frozen=True, slots=True)
class Finished:
    status: str
    request_hash: str
    file: str


def iter_entries(path: Path) -> Iterator[dict[str, Any]]:
    """Every well-formed entry in one manifest file, in order."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return
    with handle:
        for raw in handle:
            try:
                entry = json.loads(raw)
            except ValueError:
                continue  # a torn line from a killed run
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                yield entry


def manifest_paths(out_dir: Path) -> list[Path]:
    """The manifest files in an out-dir."""
    path = out_dir / MANIFEST
    return [path] if path.exists() else []


def load_finished(out_dir: Path) -> dict[str, Finished]:
    """id -> its latest manifest entry, for resume."""
    finished: dict[str, Finished] = {}
    for path in manifest_paths(out_dir):
        for entry in iter_entries(path):
            finished[entry["id"]] = Finished(
                str(entry.get("status")), str(entry.get("request_hash")), str(entry.get("file"))
            )
    return finished
