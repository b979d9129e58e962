"""``batch submit``: the items not yet done, as Batch API input files, uploaded, one batch each.

In order, each step recorded in the journal before and after it happens:

1. ask about every open batch: one refused for the provider's queue (``token_limit_exceeded``)
   is released, and its items go in this submit;
2. finish what an interrupted submit left: files written but not uploaded (or uploaded but not
   answered: found by name), uploads without a batch (or a batch created but not answered: found
   by its metadata);
3. write the remaining items (not ok in the out-dir by the run's rule, not in an open batch) into
   new files, split within the limits, and upload and create each.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..errors import InputError
from ..inputfile import InputPlan, iter_jobs
from ..jobs import Defaults, Job
from ..layout import Layout
from ..manifest import load_finished
from .api import BatchCalls
from .journal import WORK_DIR, FileRecord, ItemRecord, Journal, JournalState, read_journal
from .report import count
from .split import Group, Limits, LineTooLargeError, Splitter

QUEUE_FULL = "token_limit_exceeded"


@dataclass(frozen=True, slots=True)
class SubmitSettings:
    out_dir: Path
    ext: str = "txt"
    limits: Limits = field(default_factory=Limits)


@dataclass(slots=True)
class SubmitResult:
    created: list[FileRecord] = field(default_factory=list)  # batches this submit created (or found)
    released: int = 0  # batches refused for the queue limit, whose items were sent again
    already_done: int = 0
    in_batches: int = 0  # items left alone: already in an open batch
    requests: int = 0


def request_of(job: Job) -> tuple[str, dict[str, Any]]:
    """The Batch API url and body for a job: what ``run`` sends, without the streaming options."""
    return job.wire.batch_url, job.body()


async def submit(
    plan: InputPlan,
    defaults: Defaults,
    settings: SubmitSettings,
    calls: BatchCalls,
    *,
    notify: Callable[[str], None] = lambda message: None,
) -> SubmitResult:
    out_dir = settings.out_dir
    journal = Journal(out_dir)
    result = SubmitResult()
    state = await asyncio.to_thread(read_journal, out_dir)
    for record in state.open_files():
        if record.batch_id is None:
            continue
        batch = await calls.retrieve(record.batch_id)
        codes = [error.code for error in (batch.errors.data or [])] if batch.errors is not None else []
        if batch.status == "failed" and QUEUE_FULL in codes:
            await asyncio.to_thread(journal.event, "released", record, batch_id=record.batch_id, code=QUEUE_FULL)
            record.released = QUEUE_FULL
            result.released += 1
            notify(f"streamdump: {record.batch_id} was refused ({QUEUE_FULL}): its items go in this submit")
    for record in state.open_files():
        if record.batch_id is None:
            await _send(record, out_dir, journal, calls, result, notify)
    fresh = await asyncio.to_thread(_write_files, plan, defaults, settings, state, journal, result)
    for record in fresh:
        await _send(record, out_dir, journal, calls, result, notify)
    return result


async def _send(
    record: FileRecord,
    out_dir: Path,
    journal: Journal,
    calls: BatchCalls,
    result: SubmitResult,
    notify: Callable[[str], None],
) -> None:
    """Upload the file and create its batch, each step journalled before and after."""
    path = out_dir / WORK_DIR / record.name
    if record.file_id is None:
        search = record.upload_started
        if not await asyncio.to_thread(path.exists):
            found = await calls.call("finding an upload", lambda: calls.find_upload(record)) if search else None
            if found is None:  # never uploaded, and the file is gone: the next submit writes its items again
                await asyncio.to_thread(journal.event, "released", record, code="missing_input")
                record.released = "missing_input"
                notify(f"streamdump: {record.name} is gone before it was uploaded: its items go in the next submit")
                return
        if not search:
            await asyncio.to_thread(journal.event, "upload_started", record, filename=record.name)
        stored = await calls.upload(record, path, search_first=search)
        await asyncio.to_thread(journal.event, "uploaded", record, file_id=stored.id)
        record.file_id = stored.id
    if record.batch_id is None:
        search = record.creating_since is not None
        if not search:
            record.creating_since = time.time()
            await asyncio.to_thread(journal.event, "batch_creating", record, file_id=record.file_id)
        batch = await calls.create(record, search_first=search)
        await asyncio.to_thread(journal.event, "batch_created", record, batch_id=batch.id, status=batch.status)
        record.batch_id = batch.id
    with contextlib.suppress(FileNotFoundError):
        await asyncio.to_thread(os.unlink, path)  # the server has it now
    result.created.append(record)
    result.requests += record.requests
    notify(f"streamdump: {record.batch_id}: {count(record.requests, 'request')} to {record.model} ({record.endpoint})")


class _OpenFile:
    """An input file being written: its lines on disk, its digest and its items as they come."""

    def __init__(self, work: Path, group: Group) -> None:
        self.key = secrets.token_hex(6)
        self.group = group
        self.part = work / f"{self.key}.jsonl.part"
        self.handle: IO[bytes] = open(self.part, "wb")  # noqa: SIM115 - closed in close()
        self.digest = hashlib.sha256()
        self.items: list[ItemRecord] = []
        self.bytes = 0

    def add(self, data: bytes, item: ItemRecord) -> None:
        self.handle.write(data)
        self.digest.update(data)
        self.bytes += len(data)
        self.items.append(item)

    def close(self, journal: Journal) -> FileRecord:
        self.handle.close()
        digest = self.digest.hexdigest()
        endpoint, model = self.group
        record = FileRecord(self.key, f"streamdump-{self.key}-{digest[:16]}.jsonl", digest, endpoint, model)
        record.requests, record.bytes, record.written = len(self.items), self.bytes, True
        record.items = {item.id: item for item in self.items}
        os.replace(self.part, self.part.parent / record.name)
        written = {
            "event": "file_written",
            "key": self.key,
            "name": record.name,
            "digest": digest,
            "endpoint": endpoint,
            "model": model,
            "requests": record.requests,
            "bytes": record.bytes,
        }
        journal.append(*[item.to_json(self.key) for item in self.items], written)
        return record


def _write_files(
    plan: InputPlan,
    defaults: Defaults,
    settings: SubmitSettings,
    state: JournalState,
    journal: Journal,
    result: SubmitResult,
) -> list[FileRecord]:
    """Blocking (run in a thread): the items still to send, written into new input files."""
    out_dir = settings.out_dir
    pending = state.pending_ids()
    finished = load_finished(out_dir)
    answers = {entry.name for entry in os.scandir(out_dir) if entry.name.endswith("." + settings.ext)}
    work = out_dir / WORK_DIR
    work.mkdir(exist_ok=True)
    for stale in work.glob("*.jsonl.part"):  # a file an interrupted submit was writing: never recorded
        stale.unlink(missing_ok=True)
    splitter = Splitter(settings.limits)
    open_files: dict[Group, _OpenFile] = {}
    records: list[FileRecord] = []
    try:
        for job in iter_jobs(plan, defaults):
            done = finished.get(job.id)
            layout = Layout(out_dir, job.name, ext=settings.ext, n=job.choices)
            if (
                done is not None
                and done.status == "ok"
                and done.request_hash == job.request_hash
                and all(name in answers for name in layout.answer_names())
            ):
                result.already_done += 1
                continue
            if job.id in pending:
                result.in_batches += 1
                continue
            url, body = request_of(job)
            data = json.dumps(
                {"custom_id": job.id, "method": "POST", "url": url, "body": body}, ensure_ascii=False
            ).encode("utf-8", "surrogatepass")
            data += b"\n"
            group = (url, job.model)
            try:
                fresh = splitter.place(group, len(data))
            except LineTooLargeError as exc:
                raise InputError([f"{plan.display}:{job.line}: {exc}"]) from None
            if fresh and group in open_files:
                records.append(open_files.pop(group).close(journal))
            if group not in open_files:
                open_files[group] = _OpenFile(work, group)
            item = ItemRecord(job.id, job.line, job.name, settings.ext, job.choices, job.request_hash, job.api)
            open_files[group].add(data, item)
        for group in list(open_files):
            records.append(open_files.pop(group).close(journal))
    finally:
        for leftover in open_files.values():  # interrupted: the partial file is not recorded as written
            leftover.handle.close()
    return records
