"""The manifests: one JSON line per finished item, appended as items finish; read back on resume.
The entry is built here too (``build_entry``), and the item's error record beside it.

An unsharded run writes ``manifest.jsonl``; a run of ``--shard K/N`` writes ``manifest.K-of-N.jsonl``,
so shards sharing an out-dir never write the same file.  Readers take every manifest in the dir.

Reading tolerates a torn last line (a run killed mid-write) and any line that is not a JSON
object: such lines are skipped.  The latest line for an id wins: within one manifest the later
line, across manifests the one that ended later (``ended_at``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from . import _constants as C
from .output import MANIFEST

if TYPE_CHECKING:
    from .errors import AttemptError
    from .jobs import Job
    from .sse import StreamState

_SHARD_MANIFEST = re.compile(r"manifest\.([1-9][0-9]*)-of-([1-9][0-9]*)\.jsonl")


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Finished:
    status: str
    request_hash: str
    file: str
    source: Path | None = None  # the manifest holding the entry, and where its line starts
    offset: int = -1
    # What summary.json counts of the entry: one finish reason per choice, and its tokens.
    reasons: tuple[str, ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0


def figures(entry: dict[str, Any]) -> tuple[tuple[str, ...], int, int]:
    """An entry's finish reasons (one per choice, with several) and its prompt and completion tokens."""
    reasons = [c.get("finish_reason") for c in entry.get("choices") or ()] or [entry.get("finish_reason")]
    usage = entry.get("usage")
    if not isinstance(usage, dict):
        usage = {}
    return (
        tuple(str(reason) for reason in reasons if reason),
        int(usage.get("prompt_tokens") or 0),
        int(usage.get("completion_tokens") or 0),
    )


def iter_entries(path: Path) -> Iterator[dict[str, Any]]:
    """Every well-formed entry in one manifest file, in order."""
    for _, entry in iter_located_entries(path):
        yield entry


def iter_located_entries(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(offset of its line, entry) for every well-formed entry in one manifest file, in order."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return
    with handle:
        offset = 0
        for raw in handle:
            start, offset = offset, offset + len(raw)
            entry = _parse(raw)
            if entry is not None:
                yield start, entry


def read_entry(path: Path, offset: int) -> dict[str, Any] | None:
    """The entry whose line starts at ``offset`` (as ``iter_located_entries`` gave it)."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        return _parse(handle.readline())


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        entry = json.loads(raw)
    except ValueError:
        return None  # a torn line from a killed run
    if isinstance(entry, dict) and isinstance(entry.get("id"), str):
        return entry
    return None


def manifest_paths(out_dir: Path) -> list[Path]:
    """Every manifest in an out-dir: ``manifest.jsonl``, then each ``manifest.K-of-N.jsonl`` by N, K."""
    paths = [out_dir / MANIFEST] if (out_dir / MANIFEST).is_file() else []
    sharded: list[tuple[int, int, Path]] = []
    for path in out_dir.glob("manifest.*-of-*.jsonl"):
        match = _SHARD_MANIFEST.fullmatch(path.name)
        if match is not None and path.is_file():
            sharded.append((int(match[2]), int(match[1]), path))
    return paths + [path for _, _, path in sorted(sharded)]


def latest_entries(
    out_dir: Path,
    project: Callable[[dict[str, Any], Path, int], T],
    *,
    keep: Callable[[str], bool] | None = None,
) -> dict[str, T]:
    """id -> ``project(entry, manifest, offset)`` of its latest entry, over every manifest.

    The one rule resume and status share: within a manifest the later line wins; across manifests
    the entry that ended later wins. Only ids ``keep`` accepts are kept, when given.
    """
    latest: dict[str, T] = {}
    when: dict[str, tuple[int, str]] = {}  # id -> (manifest index, ended_at) of the entry kept
    for index, path in enumerate(manifest_paths(out_dir)):
        for offset, entry in iter_located_entries(path):
            item = entry["id"]
            if keep is not None and not keep(item):
                continue
            ended = str(entry.get("ended_at") or "")
            seen = when.get(item)
            if seen is not None and seen[0] != index and ended < seen[1]:
                continue  # another manifest has a later entry for this id
            when[item] = (index, ended)
            latest[item] = project(entry, path, offset)
    return latest


def _finished(entry: dict[str, Any], path: Path, offset: int) -> Finished:
    reasons, prompt, completion = figures(entry)
    return Finished(
        str(entry.get("status")),
        str(entry.get("request_hash")),
        str(entry.get("file")),
        path,
        offset,
        reasons,
        prompt,
        completion,
    )


def load_finished(out_dir: Path, *, keep: Callable[[str], bool] | None = None) -> dict[str, Finished]:
    """id -> its latest manifest entry, for resume (only ids ``keep`` accepts, when given)."""
    return latest_entries(out_dir, _finished, keep=keep)


def build_entry(
    *,
    job: Job,
    file: str,
    status: str,
    attempts: int,
    state: StreamState,
    usage: dict[str, Any],
    chars: int,
    fields: dict[str, Any],
    ttft: float | None,
    duration: float,
    request_id: str | None,
    ended_at: str,
) -> dict[str, Any]:
    """One manifest line: what an item's latest attempt came to (``fields`` are the files' counts,
    with ``choices`` when there are several)."""
    fields = dict(fields)
    choices = fields.pop("choices", None)
    entry = {
        "id": job.id,
        "line": job.line,
        "file": file,
        "status": status,
        "api": job.api,
        "finish_reason": state.finish_reason,
        "model": state.model or job.model,
        "attempts": attempts,
        "usage": usage,
        "chars": chars,
        **fields,
        "ttft_s": None if ttft is None else round(ttft, 4),
        "duration_s": round(duration, 4),
        "request_hash": job.request_hash,
        "request_id": request_id,
        "response_id": state.response_id,
        "ended_at": ended_at,
    }
    if choices is not None:
        entry["choices"] = choices
    return entry


def error_fields(exc: AttemptError) -> dict[str, Any]:
    """How a failure reads in the manifest, the error record and the results file."""
    error: dict[str, Any] = {"type": exc.kind, "message": str(exc), "status": exc.status}
    if exc.code is not None:
        error["code"] = exc.code
    if isinstance(exc.body, dict):
        error["body"] = exc.body  # the server's own error object, for the results file
    elif isinstance(exc.body, str) and exc.body.strip():
        error["body"] = exc.body[: C.ERROR_BODY_CHARS]  # a text error page (a proxy's 404, ...)
    return error


def error_record(
    *, job: Job, file: str, error: dict[str, Any], attempts: list[dict[str, Any]], kept: list[str], answer_part: str
) -> bytes:
    """``<name>.error.json``: the last error, every attempt, and which partial files were kept."""
    record = {
        "id": job.id,
        "file": file,
        "error": error,
        "attempts": attempts,
        "partial_file": answer_part if answer_part in kept else None,
        "partial_files": kept,
    }
    return (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")
