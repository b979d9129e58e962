"""``batch status`` and ``batch cancel``: what the server says of each batch in the journal.

A batch that has been collected is *settled* when none of its items is left wanting: each is ok,
or was sent again in a later batch (after it expired, say).  Settled batches do not make the
exit code 1; a batch whose every item was sent again later is shown as superseded, without asking.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from ..manifest import load_finished
from .api import BatchCalls
from .journal import TERMINAL, FileRecord, Journal, read_journal


@dataclass(frozen=True, slots=True)
class BatchRow:
    key: str
    batch_id: str | None
    status: str  # the server's, or "not created" / "released" from the journal
    total: int
    completed: int = 0
    failed: int = 0
    model: str = ""
    endpoint: str = ""
    collected: bool = False
    settled: bool = False  # collected, and no item of it is left wanting
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.settled or (self.status == "completed" and self.failed == 0)


@dataclass(slots=True)
class StatusReport:
    rows: list[BatchRow] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return bool(self.rows) and all(row.ok for row in self.rows)


def _row(record: FileRecord, *, settled: bool, status: str, **counts: int) -> BatchRow:
    return BatchRow(
        key=record.key,
        batch_id=record.batch_id,
        status=status,
        total=counts.get("total", record.requests),
        completed=counts.get("completed", 0),
        failed=counts.get("failed", 0),
        model=record.model,
        endpoint=record.endpoint,
        collected=record.collected is not None,
        settled=settled,
    )


async def batch_status(out_dir: Path, calls: BatchCalls) -> StatusReport:
    state = await asyncio.to_thread(read_journal, out_dir)
    latest = state.latest_keys()
    finished = await asyncio.to_thread(load_finished, out_dir, keep=latest.__contains__)
    report = StatusReport()
    for record in state.files.values():
        mine = [item for item in record.items if latest.get(item) == record.key]
        wanting = [item for item in mine if item not in finished or finished[item].status != "ok"]
        settled = record.collected is not None and not wanting
        if not mine:
            report.rows.append(_row(record, settled=True, status="superseded"))
        elif record.released is not None:
            report.rows.append(_row(record, settled=False, status="released"))
        elif record.batch_id is None:
            report.rows.append(_row(record, settled=False, status="not created"))
        else:
            batch = await calls.retrieve(record.batch_id)
            counts = batch.request_counts
            numbers = {"total": counts.total, "completed": counts.completed, "failed": counts.failed} if counts else {}
            row = _row(record, settled=settled, status=batch.status, **numbers)
            if batch.errors is not None and batch.errors.data:
                errors = tuple(f"{error.code}: {error.message}" for error in batch.errors.data)
                row = dataclasses.replace(row, errors=errors)
            report.rows.append(row)
    return report


def count(n: int, noun: str) -> str:
    """``1 batch``, ``2 batches``, ``1 request``, ``3 requests``."""
    if n == 1:
        return f"1 {noun}"
    return f"{n} {noun}es" if noun.endswith(("ch", "s")) else f"{n} {noun}s"


def format_status(report: StatusReport) -> str:
    if not report.rows:
        return "no batches"
    lines = []
    for row in report.rows:
        name = row.batch_id or f"(file {row.key})"
        counts = f"{row.completed}/{row.total} done, {row.failed} failed"
        notes = []
        if row.collected:
            notes.append("collected" + ("; its failures were sent again" if row.settled and row.failed else ""))
        elif row.status in TERMINAL:
            notes.append("to collect")
        if row.status == "not created":
            notes.append("run batch submit to finish sending it")
        if row.status == "released":
            notes.append("refused by the provider's queue: run batch submit to send its items again")
        line = f"{name}  {row.status}  {counts}  {row.model} {row.endpoint}"
        if notes:
            line += f"  ({'; '.join(notes)})"
        lines.append(line)
        lines += [f"    {error}" for error in row.errors]
    done = sum(1 for row in report.rows if row.ok)
    lines.append(f"{done} of {len(report.rows)} batches done (completed without a failed request, or settled)")
    return "\n".join(lines)


async def cancel_batches(out_dir: Path, calls: BatchCalls) -> list[str]:
    """Cancel every unfinished batch; the ids of those asked to stop."""
    journal = Journal(out_dir)
    state = await asyncio.to_thread(read_journal, out_dir)
    cancelled = []
    for record in state.open_files():
        if record.batch_id is None:
            continue
        batch = await calls.retrieve(record.batch_id)
        if batch.status in TERMINAL or batch.status == "cancelling":
            continue
        await asyncio.to_thread(journal.event, "cancel_requested", record, batch_id=record.batch_id)
        await calls.cancel(record.batch_id)
        cancelled.append(record.batch_id)
    return cancelled
