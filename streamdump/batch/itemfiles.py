"""One Batch API result line -> the item's files and manifest line, exactly as a streamed run writes them.

``outcome_of`` is pure: it decides every file (the answer, reasoning, refusal, tool calls, numbered
choices, or the error record) and the manifest entry.  ``write_items`` is the one place that writes
them (through the run's ``OutputWriter``: files first, then the manifest line), so the writer can
be swapped for another without touching collect.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..choices import ANSWER, REASONING, REFUSAL
from ..jobs import Job
from ..layout import Layout, part_path
from ..manifest import build_entry, error_record
from ..output import OutputWriter, encode_text
from ..partset import empty_fields
from ..runstate import iso
from ..sse import StreamState
from .bodies import Parsed, Produced, parse_body
from .journal import ItemRecord

Files = list[tuple[Path, bytes | None]]


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """What every item of one batch records about it."""

    batch_id: str
    status: str
    model: str
    out_dir: Path
    keep_reasoning: bool = True
    errors: tuple[str, ...] = ()  # what the server said of a batch that failed


@dataclass(frozen=True, slots=True)
class Outcome:
    files: Files  # (path, bytes) to write, (path, None) to remove
    entry: dict[str, Any]


def layout_of(item: ItemRecord, out_dir: Path) -> Layout:
    return Layout(out_dir, item.name, ext=item.ext, n=item.n)


def _entry(
    item: ItemRecord,
    layout: Layout,
    batch: BatchInfo,
    *,
    status: str = "failed",
    parsed: Parsed | None = None,
    request_id: str | None = None,
    fields: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest line, built where a run's is (``manifest.build_entry``), plus how it was run.

    A batch has no time to first token nor a duration of its own: both are null.
    """
    job = Job(item.id, item.line, batch.model, {}, {}, item.name, item.request_hash, item.api)
    state = StreamState()
    if parsed is not None:
        state.finish_reason, state.model, state.response_id = (
            parsed.choices[0].finish_reason,
            parsed.model,
            parsed.response_id,
        )
    entry = build_entry(
        job=job,
        file=layout.answer().name,
        status=status,
        attempts=1,
        state=state,
        usage=parsed.usage
        if parsed is not None
        else {"prompt_tokens": None, "completion_tokens": None, "source": None},
        chars=sum(len(choice.content) for choice in parsed.choices) if parsed is not None else 0,
        fields=fields or empty_fields(),
        ttft=None,
        duration=0.0,
        request_id=request_id,
        ended_at=iso(time.time()),
    )
    entry["duration_s"] = None
    entry["via"] = "batch"
    entry["batch_id"] = batch.batch_id
    return entry


def outcome_of(item: ItemRecord, line: dict[str, Any] | None, batch: BatchInfo) -> Outcome:
    """The files and manifest entry for one item; ``line`` None when the batch gave it no result."""
    layout = layout_of(item, batch.out_dir)
    if line is None:
        reason = f"batch_{batch.status}"
        message = f"the batch {batch.batch_id} ended ({batch.status}) without running this request"
        if batch.errors:
            message += f": {'; '.join(batch.errors)}"
        return _failed(item, layout, batch, {"type": reason, "message": message, "status": None}, None)
    response = line.get("response") or {}
    request_id = response.get("request_id")
    status = response.get("status_code")
    body = response.get("body")
    if line.get("error") is None and status == 200 and isinstance(body, dict):
        try:
            parsed = parse_body(item.api, body)
        except (ValueError, TypeError, AttributeError) as exc:
            error = {"type": "bad_result", "message": f"the batch's result cannot be read: {exc}", "status": 200}
            return _failed(item, layout, batch, error, request_id)
        return _succeeded(item, layout, batch, parsed, request_id)
    error_obj = line.get("error") or {}
    server = body.get("error") if isinstance(body, dict) else None
    if isinstance(status, int) and status != 200:
        text = server.get("message") if isinstance(server, dict) else None
        message = f"HTTP {status}: {text or 'the request failed'}"
        error = {"type": f"http_{status}", "message": message, "status": status}
        if isinstance(server, dict):
            error["body"] = server
    else:
        code = str(error_obj.get("code") or "failed")
        error = {"type": code, "message": str(error_obj.get("message") or "the request failed"), "status": None}
    return _failed(item, layout, batch, error, request_id)


def _failed(
    item: ItemRecord, layout: Layout, batch: BatchInfo, error: dict[str, Any], request_id: str | None
) -> Outcome:
    entry = _entry(item, layout, batch, request_id=request_id)
    entry["error"] = error
    said = {key: error[key] for key in ("type", "message", "status")}
    attempt = {"attempt": 1, "started_at": entry["ended_at"], "chars": 0, "error": said}
    job = Job(item.id, item.line, batch.model, {}, {}, item.name, item.request_hash, item.api)
    answer = layout.answer()
    data = error_record(
        job=job, file=answer.name, error=error, attempts=[attempt], kept=[], answer_part=part_path(answer).name
    )
    # As after a failed run: part files go; complete files of an earlier run stay.
    stale = [path for path in layout.side_paths(list(range(item.n))) if path.name.endswith(".part")]
    return Outcome([(layout.error(), data), *[(path, None) for path in stale]], entry)


def _succeeded(item: ItemRecord, layout: Layout, batch: BatchInfo, parsed: Parsed, request_id: str | None) -> Outcome:
    files: Files = []
    written: set[Path] = set()

    def put(path: Path, data: bytes) -> None:
        files.append((path, data))
        written.add(path)

    refused = [choice.index for choice in parsed.choices if choice.refusal]
    for choice in parsed.choices:
        index = choice.index
        if choice.content or choice.index not in refused:
            put(layout.streamed(ANSWER, index), encode_text(choice.content))
        if choice.reasoning and batch.keep_reasoning:
            put(layout.streamed(REASONING, index), encode_text(choice.reasoning))
        if choice.refusal:
            put(layout.streamed(REFUSAL, index), encode_text(choice.refusal))
        if choice.tool_calls:
            data = (json.dumps(choice.tool_calls, indent=2, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")
            put(layout.tool_calls(index), data)
    indices = [choice.index for choice in parsed.choices]
    stale = [path for path in [layout.error(), *layout.side_paths(indices)] if path not in written]
    files += [(path, None) for path in stale]
    fields: dict[str, Any] = {
        "reasoning_chars": sum(len(choice.reasoning) for choice in parsed.choices),
        "refusal_chars": sum(len(choice.refusal) for choice in parsed.choices),
        "tool_calls": sum(len(choice.tool_calls) for choice in parsed.choices),
    }
    if layout.n > 1 or indices != [0]:
        fields["choices"] = [_choice_fields(layout, choice) for choice in parsed.choices]
    status = "refused" if refused else "ok"
    entry = _entry(item, layout, batch, status=status, parsed=parsed, request_id=request_id, fields=fields)
    return Outcome(files, entry)


def _choice_fields(layout: Layout, choice: Produced) -> dict[str, Any]:
    return {
        "index": choice.index,
        "file": layout.answer(choice.index).name,
        "finish_reason": choice.finish_reason,
        "chars": len(choice.content),
        "reasoning_chars": len(choice.reasoning),
        "refusal_chars": len(choice.refusal),
        "tool_calls": len(choice.tool_calls),
    }


async def write_items(writer: OutputWriter, outcomes: list[Outcome]) -> None:
    """Write the items' files, then their manifest lines (a line is never ahead of its files).

    Several items go in one trip to the I/O thread: collecting 20,000 items one by one spent most
    of its time waiting for the trips.
    """
    await writer.write_files([file for outcome in outcomes for file in outcome.files])
    # Each record() queues its line at once, in this order; the flusher writes them together.
    await asyncio.gather(*(writer.record(outcome.entry) for outcome in outcomes))
