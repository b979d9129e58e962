"""One Batch API result line -> the item's files and manifest line, exactly as a streamed run writes them.

``outcome_of`` is pure: it decides every file (the answer, reasoning, refusal, tool calls, numbered
choices, or the error record) and the manifest entry.  ``write_item`` is the one place that writes
them (through the run's ``OutputWriter``: files first, then the manifest line), so the writer can
be swapped for another without touching collect.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..choices import ANSWER, REASONING, REFUSAL
from ..layout import Layout
from ..output import OutputWriter, encode_text
from ..runstate import iso
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


@dataclass(frozen=True, slots=True)
class Outcome:
    files: Files  # (path, bytes) to write, (path, None) to remove
    entry: dict[str, Any]


def layout_of(item: ItemRecord, out_dir: Path) -> Layout:
    return Layout(out_dir, item.name, ext=item.ext, n=item.n)


def _base(item: ItemRecord, layout: Layout, batch: BatchInfo) -> dict[str, Any]:
    return {
        "id": item.id,
        "line": item.line,
        "file": layout.answer().name,
        "status": "failed",
        "finish_reason": None,
        "model": batch.model,
        "attempts": 1,
        "usage": {"prompt_tokens": None, "completion_tokens": None, "source": None},
        "chars": 0,
        "reasoning_chars": 0,
        "refusal_chars": 0,
        "tool_calls": 0,
        "ttft_s": None,
        "duration_s": None,
        "request_hash": item.request_hash,
        "request_id": None,
        "response_id": None,
        "ended_at": iso(time.time()),
    }


def _tail(entry: dict[str, Any], batch: BatchInfo) -> dict[str, Any]:
    return {**entry, "via": "batch", "batch_id": batch.batch_id}


def outcome_of(item: ItemRecord, line: dict[str, Any] | None, batch: BatchInfo) -> Outcome:
    """The files and manifest entry for one item; ``line`` None when the batch gave it no result."""
    layout = layout_of(item, batch.out_dir)
    if line is None:
        reason = f"batch_{batch.status}"
        message = f"the batch {batch.batch_id} ended ({batch.status}) without running this request"
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
    entry = _base(item, layout, batch)
    entry["request_id"] = request_id
    entry["error"] = error
    said = {key: error[key] for key in ("type", "message", "status")}
    attempt = {"attempt": 1, "started_at": entry["ended_at"], "chars": 0, "error": said}
    record = {
        "id": item.id,
        "file": layout.answer().name,
        "error": error,
        "attempts": [attempt],
        "partial_file": None,
        "partial_files": [],
    }
    data = (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")
    # As after a failed run: part files go; complete files of an earlier run stay.
    stale = [path for path in layout.side_paths(list(range(item.n))) if path.name.endswith(".part")]
    return Outcome([(layout.error(), data), *[(path, None) for path in stale]], _tail(entry, batch))


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
    entry = _base(item, layout, batch)
    first = parsed.choices[0]
    entry.update(
        status="refused" if refused else "ok",
        finish_reason=first.finish_reason,
        model=parsed.model or batch.model,
        usage=parsed.usage,
        chars=sum(len(choice.content) for choice in parsed.choices),
        reasoning_chars=sum(len(choice.reasoning) for choice in parsed.choices),
        refusal_chars=sum(len(choice.refusal) for choice in parsed.choices),
        tool_calls=sum(len(choice.tool_calls) for choice in parsed.choices),
        request_id=request_id,
        response_id=parsed.response_id,
    )
    if layout.n > 1 or indices != [0]:
        entry["choices"] = [_choice_fields(layout, choice) for choice in parsed.choices]
    return Outcome(files, _tail(entry, batch))


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


async def write_item(writer: OutputWriter, outcome: Outcome) -> None:
    """Write an item's files, then its manifest line (a line is never ahead of its files)."""
    await writer.write_files(outcome.files)
    await writer.record(outcome.entry)
