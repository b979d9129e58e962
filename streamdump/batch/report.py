"""``batch status`` and ``batch cancel``: what the server says of each batch in the journal.

Only *current* batches count for the exit code: those holding the latest submission of some item.
A batch whose every item was sent again later (after it expired, say) is shown as superseded.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from .api import BatchCalls
from .collect import TERMINAL
from .journal import FileRecord, Journal, read_journal


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
    current: bool = True
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "completed" and self.failed == 0


@dataclass(slots=True)
class StatusReport:
    rows: list[BatchRow] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        current = [row for row in self.rows if row.current]
        return bool(current) and all(row.ok for row in current)


def _row(record: FileRecord, *, current: bool, status: str, **counts: int) -> BatchRow:
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
        current=current,
    )


async def batch_status(out_dir: Path, calls: BatchCalls) -> StatusReport:
    state = await asyncio.to_thread(read_journal, out_dir)
    current = {record.key for record in state.current()}
    report = StatusReport()
    for record in state.files.values():
        is_current = record.key in current
        if record.released is not None:
            report.rows.append(_row(record, current=is_current, status="released"))
        elif record.batch_id is None:
            report.rows.append(_row(record, current=is_current, status="not created"))
        elif not is_current:
            report.rows.append(_row(record, current=False, status="superseded"))
        else:
            batch = await calls.retrieve(record.batch_id)
            counts = batch.request_counts
            numbers = {"total": counts.total, "completed": counts.completed, "failed": counts.failed} if counts else {}
            row = _row(record, current=True, status=batch.status, **numbers)
            if batch.errors is not None and batch.errors.data:
                errors = tuple(f"{error.code}: {error.message}" for error in batch.errors.data)
                row = dataclasses.replace(row, errors=errors)
            report.rows.append(row)
    return report


def format_status(report: StatusReport) -> str:
    if not report.rows:
        return "no batches"
    lines = []
    for row in report.rows:
        name = row.batch_id or f"(file {row.key})"
        counts = f"{row.completed}/{row.total} done, {row.failed} failed"
        notes = []
        if row.collected:
            notes.append("collected")
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
    current = [row for row in report.rows if row.current]
    done = sum(1 for row in current if row.ok)
    lines.append(f"{done} of {len(current)} batches completed without a failed request")
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
