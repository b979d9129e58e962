"""``batch collect``: each finished batch's results, written into the out-dir as a streamed run writes them.

For every open batch that has finished (completed, expired, cancelled, failed): its output and
error files are downloaded to disk (streamed), and every item gets its files and a manifest line
(``itemfiles``).  An item the batch gave no result gets a failed line with the batch's reason, so
the next ``batch submit`` sends it again; a batch refused for the provider's queue
(``token_limit_exceeded``) writes nothing and is released, its items left for the next submit.
Then the journal says ``collected``.  An item already written from this batch (a collect run
twice, or interrupted and run again) is not written again; nor is one a later run made ok.

``wait``: ask again, with backoff, until every batch has finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .. import _constants as C
from ..manifest import latest_entries
from ..output import OutputWriter
from .api import BatchCalls
from .itemfiles import BatchInfo, Outcome, outcome_of, write_items
from .journal import TERMINAL, WORK_DIR, FileRecord, ItemRecord, Journal, read_journal
from .report import count
from .submit import QUEUE_FULL

if TYPE_CHECKING:
    from openai.types import Batch

READ_LINES = 256  # result lines read per trip to a thread
WRITE_ITEMS = 256  # items written per trip to the I/O thread


@dataclass(frozen=True, slots=True)
class CollectSettings:
    out_dir: Path
    keep_reasoning: bool = True
    wait: bool = False
    poll_first: float = C.BATCH_POLL_FIRST
    poll_max: float = C.BATCH_POLL_MAX


@dataclass(slots=True)
class CollectResult:
    collected: list[tuple[str, str]] = field(default_factory=list)  # (batch id, its status)
    running: list[str] = field(default_factory=list)
    unsent: int = 0  # files an interrupted submit left without a batch
    released: int = 0  # batches refused for the provider's queue: their items wait for the next submit
    statuses: Counter[str] = field(default_factory=Counter)  # items written, by status
    unchanged: int = 0  # items already written from their batch

    @property
    def all_ok(self) -> bool:
        not_ok = sum(n for status, n in self.statuses.items() if status != "ok")
        return not self.running and not self.unsent and not self.released and not_ok == 0


async def collect(
    settings: CollectSettings, calls: BatchCalls, *, notify: Callable[[str], None] = lambda message: None
) -> CollectResult:
    result = CollectResult()
    delay = settings.poll_first
    while True:
        result.running.clear()
        state = await asyncio.to_thread(read_journal, settings.out_dir)
        result.unsent = sum(1 for record in state.open_files() if record.batch_id is None)
        for record in state.open_files():
            if record.batch_id is None:
                continue
            batch = await calls.retrieve(record.batch_id)
            if batch.status in TERMINAL:
                await _collect_batch(record, batch, settings, calls, result, notify)
            else:
                result.running.append(record.batch_id)
        if not result.running or not settings.wait:
            return result
        running = count(len(result.running), "batch")
        notify(f"streamdump: {running} still running; asking again in {delay:.0f} s")
        await asyncio.sleep(delay)
        delay = min(delay * 2, settings.poll_max)


async def _collect_batch(
    record: FileRecord,
    batch: Batch,
    settings: CollectSettings,
    calls: BatchCalls,
    result: CollectResult,
    notify: Callable[[str], None],
) -> None:
    out_dir = settings.out_dir
    journal = Journal(out_dir)
    said = list(batch.errors.data or []) if batch.errors is not None else []
    if batch.status == "failed" and any(error.code == QUEUE_FULL for error in said):
        await asyncio.to_thread(journal.event, "released", record, batch_id=batch.id, code=QUEUE_FULL)
        notify(f"streamdump: {batch.id} was refused ({QUEUE_FULL}): run batch submit to send its items again")
        result.released += 1
        return
    downloads = []
    for file_id, kind in ((batch.output_file_id, "output"), (batch.error_file_id, "errors")):
        if file_id:
            dest = out_dir / WORK_DIR / f"{batch.id}.{kind}.jsonl"
            await asyncio.to_thread(dest.parent.mkdir, exist_ok=True)
            await calls.download(file_id, dest)
            downloads.append(dest)
    done = await asyncio.to_thread(_already_written, out_dir, record, batch.id)
    errors = tuple(f"{error.code}: {error.message}" for error in said)
    info = BatchInfo(
        batch.id, batch.status, record.model, out_dir, keep_reasoning=settings.keep_reasoning, errors=errors
    )
    seen: set[str] = set()
    pending: list[Outcome] = []

    async def write(item: ItemRecord, line: dict[str, Any] | None) -> None:
        if item.id in done:
            result.unchanged += 1
            return
        outcome = outcome_of(item, line, info)
        result.statuses[outcome.entry["status"]] += 1
        pending.append(outcome)
        if len(pending) >= WRITE_ITEMS:
            await write_items(writer, pending)
            pending.clear()

    async with OutputWriter(out_dir) as writer:
        for path in downloads:
            async for line in _lines(path):
                item = record.items.get(str(line.get("custom_id")))
                if item is not None and item.id not in seen:  # ours, and not a line the server repeated
                    seen.add(item.id)
                    await write(item, line)
        for item in record.items.values():
            if item.id not in seen:
                await write(item, None)
        await write_items(writer, pending)
    await asyncio.to_thread(journal.event, "collected", record, batch_id=batch.id, status=batch.status)
    for path in downloads:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(os.unlink, path)
    result.collected.append((batch.id, batch.status))
    notify(f"streamdump: {batch.id} ({batch.status}): collected {len(record.items)} items")


def _already_written(out_dir: Path, record: FileRecord, batch_id: str) -> set[str]:
    """Items of this file whose latest manifest line came from this batch, or is ok for the same request."""

    def project(entry: dict[str, Any], path: Path, offset: int) -> tuple[Any, Any, Any]:
        return entry.get("batch_id"), entry.get("status"), entry.get("request_hash")

    latest = latest_entries(out_dir, project, keep=record.items.__contains__)
    done = set()
    for item_id, (entry_batch, status, request_hash) in latest.items():
        same_request = request_hash == record.items[item_id].request_hash
        if same_request and (entry_batch == batch_id or status == "ok"):
            done.add(item_id)
    return done


async def _lines(path: Path) -> Any:
    """The JSON objects of a downloaded result file, read a few hundred lines per trip to a thread."""
    handle: IO[bytes] = await asyncio.to_thread(open, path, "rb")
    try:
        while True:
            chunk = await asyncio.to_thread(lambda: list(itertools.islice(handle, READ_LINES)))
            if not chunk:
                return
            for parsed in _parse(chunk):
                yield parsed
    finally:
        await asyncio.to_thread(handle.close)


def _parse(raws: list[bytes]) -> Iterator[dict[str, Any]]:
    for raw in raws:
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict):
            yield line
