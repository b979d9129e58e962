"""``DIR/batches.jsonl``: every step of a batch job, recorded before and after it happens.

One JSON object a line, appended and fsynced, never rewritten.  A file of requests is known by a
``key`` drawn when it is written; its steps, in order::

    item            one per request in the file: what collect needs to write it as run would
    file_written    the input file is complete on disk (name, digest, endpoint, model, count, bytes)
    upload_started  before the upload          uploaded        after it (file_id)
    batch_creating  before creating the batch  batch_created   after it (batch_id)
    released        the batch was refused for the provider's queue (token_limit_exceeded):
                    its items were never run and go in the next submit
    cancel_requested                           collected       every item of it is in the manifest

Items of a file whose ``file_written`` is missing (a submit killed while writing it) are ignored.
A torn last line (kill -9 mid-write) is skipped, as in the manifest.  The API key is never recorded.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..output import write_all

JOURNAL = "batches.jsonl"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})  # a batch's statuses that are final
WORK_DIR = ".streamdump-batch"  # input files and downloads (a name no item can take: ids never start with ".")


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """What collect needs to write one item as ``run`` would, recorded at submit time."""

    id: str
    line: int
    name: str
    ext: str
    n: int
    request_hash: str
    api: str = "chat"

    def to_json(self, key: str) -> dict[str, Any]:
        return {
            "event": "item",
            "key": key,
            "id": self.id,
            "line": self.line,
            "name": self.name,
            "ext": self.ext,
            "n": self.n,
            "request_hash": self.request_hash,
            "api": self.api,
        }


@dataclass(slots=True)
class FileRecord:
    """One input file and the batch made of it, as far as the journal knows."""

    key: str
    name: str = ""
    digest: str = ""
    endpoint: str = ""
    model: str = ""
    requests: int = 0
    bytes: int = 0
    written: bool = False
    upload_started: bool = False
    file_id: str | None = None
    creating_since: float | None = None
    batch_id: str | None = None
    released: str | None = None  # the error code the batch was refused with
    cancel_requested: bool = False
    collected: str | None = None  # the batch's status when it was collected
    items: dict[str, ItemRecord] = field(default_factory=dict)

    @property
    def open(self) -> bool:
        """Its items are in a batch that may still bring results (or is about to be created)."""
        return self.written and self.released is None and self.collected is None

    @property
    def metadata(self) -> dict[str, str]:
        """What the batch carries, so that an interrupted submit can find it again."""
        return {"streamdump_key": self.key, "streamdump_digest": self.digest[:32]}


@dataclass(slots=True)
class JournalState:
    files: dict[str, FileRecord] = field(default_factory=dict)

    def open_files(self) -> list[FileRecord]:
        return [record for record in self.files.values() if record.open]

    def pending_ids(self) -> set[str]:
        """Ids in an unfinished batch: ``run`` and ``batch submit`` leave them alone."""
        return {item for record in self.open_files() for item in record.items}

    def latest_keys(self) -> dict[str, str]:
        """id -> the file holding its latest submission."""
        return {item: record.key for record in self.files.values() for item in record.items}


def read_journal(out_dir: Path) -> JournalState:
    state = JournalState()
    try:
        handle = open(out_dir / JOURNAL, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return state
    with handle:
        for raw in handle:
            try:
                entry = json.loads(raw)
            except ValueError:
                continue  # a torn line from a killed submit
            if isinstance(entry, dict) and isinstance(entry.get("key"), str):
                _apply(state, entry)
    for key in [key for key, record in state.files.items() if not record.written]:
        del state.files[key]
    return state


def _apply(state: JournalState, entry: dict[str, Any]) -> None:
    key = entry["key"]
    record = state.files.get(key)
    if record is None:
        record = state.files[key] = FileRecord(key)
    event = entry.get("event")
    if event == "item":
        item = ItemRecord(
            id=str(entry["id"]),
            line=int(entry["line"]),
            name=str(entry["name"]),
            ext=str(entry["ext"]),
            n=int(entry["n"]),
            request_hash=str(entry["request_hash"]),
            api=str(entry.get("api") or "chat"),
        )
        record.items[item.id] = item
    elif event == "file_written":
        record.written = True
        record.name, record.digest = str(entry["name"]), str(entry["digest"])
        record.endpoint, record.model = str(entry["endpoint"]), str(entry["model"])
        record.requests, record.bytes = int(entry["requests"]), int(entry["bytes"])
    elif event == "upload_started":
        record.upload_started = True
    elif event == "uploaded":
        record.file_id = str(entry["file_id"])
    elif event == "batch_creating":
        record.creating_since = float(entry.get("at") or 0)
    elif event == "batch_created":
        record.batch_id = str(entry["batch_id"])
    elif event == "released":
        record.released = str(entry.get("code"))
    elif event == "cancel_requested":
        record.cancel_requested = True
    elif event == "collected":
        record.collected = str(entry.get("status"))


class Journal:
    """Appends records to ``DIR/batches.jsonl``; each call is on disk (fsynced) when it returns.

    Blocking: call it from a thread (``asyncio.to_thread``) inside a coroutine.
    """

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / JOURNAL

    def append(self, *entries: dict[str, Any]) -> None:
        now = round(time.time(), 3)
        data = b"".join(
            json.dumps({**entry, "at": entry.get("at", now)}, ensure_ascii=False).encode("utf-8", "surrogatepass")
            + b"\n"
            for entry in entries
        )
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # end a torn line, or our record would be lost with it
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def event(self, event: str, record: FileRecord, **fields: Any) -> None:
        self.append({"event": event, "key": record.key, **fields})
