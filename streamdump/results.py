"""``--results-jsonl``: one line per finished item in the OpenAI Batch API output format.

``batch_line`` is pure: a manifest entry and the item's text in, a Batch API output line out::

    {"id": "batch_req_…", "custom_id": "<id>",
     "response": {"status_code": 200, "request_id": "…", "body": {<the format's own object>}},
     "error": null}

The body is what the item's wire format answers without streaming (``wire.*.batch_body``): a
``chat.completion``, a ``response`` or a ``text_completion`` object.  A failed item has
``error: {"code", "message"}``, and ``response`` carries the HTTP status and an
error body when the server answered with one (``null`` otherwise: a dropped connection, a stall).
A cancelled item has ``error.code`` ``cancelled``.  Lines for items done by an earlier run (skipped
on resume) are rebuilt from their manifest entry and ``.txt`` file, so the file always covers every
finished item of the run's input (or shard), in the order items finished.

``ResultsWriter`` writes ``FILE.part`` on the run's I/O thread and renames it to ``FILE`` when the
run ends (also when it is stopped by a signal): like a ``.txt``, the file only appears whole.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import DiskError, OutputDirError, SetupError
from .manifest import Finished, read_entry
from .output import OutputWriter, write_all
from .safefs import SafeDir, read_text
from .wire import DEFAULT, wire_for


def _digest(entry: dict[str, Any]) -> str:
    key = f"{entry['id']}\0{entry.get('request_hash')}\0{entry.get('ended_at')}"
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _created(entry: dict[str, Any]) -> int:
    """When the request started, in epoch seconds (the manifest has its end and its duration)."""
    try:
        ended = datetime.fromisoformat(str(entry.get("ended_at"))).timestamp()
    except ValueError:
        return 0
    duration = entry.get("duration_s")
    return int(ended - (duration if isinstance(duration, (int, float)) else 0))


def batch_line(entry: dict[str, Any], outputs: str | list[dict[str, Any]] | None) -> dict[str, Any]:
    """The Batch API output line for one manifest entry.

    ``outputs`` is what each choice produced, read from its files (``content``, ``refusal``,
    ``tool_calls``, ``finish_reason``, ``index``); a plain string is the only choice's text; ``None``
    when the item's files are missing. A refusal is a 200 with ``message.refusal``, as the API
    answers it (streamdump itself counts it not ok).
    """
    if isinstance(outputs, str):
        outputs = [{"index": 0, "content": outputs, "finish_reason": entry.get("finish_reason")}]
    digest = _digest(entry)
    request_id = entry.get("request_id") or f"streamdump-{digest[32:56]}"
    line: dict[str, Any] = {"id": f"batch_req_{digest[:32]}", "custom_id": entry["id"], "response": None}
    status = entry.get("status")
    if status in ("ok", "refused") and outputs is not None:
        wire = wire_for(str(entry.get("api") or DEFAULT))
        body = wire.batch_body(entry, outputs, created=_created(entry), token=digest[:24])
        line["response"] = {"status_code": 200, "request_id": request_id, "body": body}
        line["error"] = None
        return line
    if status in ("ok", "refused"):
        line["error"] = {"code": "missing_output", "message": f"{entry.get('file')} is missing from the out-dir"}
    elif status == "failed":
        error = entry.get("error") or {}
        code = str(error.get("type") or "failed")
        message = str(error.get("message") or "the request failed")
        http = error.get("status")
        if isinstance(http, int) and 400 <= http <= 599:
            server = error.get("body")
            error_body = (
                {"error": server}
                if isinstance(server, dict)
                else {"error": {"message": message, "type": code, "param": None, "code": None}}
            )
            line["response"] = {"status_code": http, "request_id": request_id, "body": error_body}
        line["error"] = {"code": code, "message": message}
    else:
        line["error"] = {"code": str(status), "message": "the run was stopped before this item finished"}
    return line


def _read(path: Path) -> str | None:
    return read_text(path)


def check_results_path(path: Path, out_dir: Path, *, ext: str = "txt", prompts: str | None = None) -> None:
    """Refuse a results file that is a directory, the prompts file, or a name a run could write in
    the out-dir (an item's answer with this --ext, a side file, a part file, the run's own files).
    Raises SetupError; runs before anything is sent."""
    if path.is_dir():
        raise SetupError(f"--results-jsonl {path}: that is a directory; give a file name")
    try:
        resolved = path.resolve()
        inside = resolved.parent == out_dir.resolve()
        is_prompts = prompts not in (None, "-") and resolved == Path(str(prompts)).resolve()
    except OSError:
        inside = is_prompts = False
    if is_prompts:
        raise SetupError(f"--results-jsonl {path}: that is the prompts file; choose another name")
    name = path.name
    ours = (f".{ext}", ".txt", ".json", ".part", ".tmp")
    if inside and (name.startswith((".", "manifest.", "summary.")) or name.endswith(ours)):
        raise SetupError(
            f"--results-jsonl {path}: an item or the run could write that name in the out-dir; "
            "choose another (or put it outside the out-dir)"
        )


class ResultsWriter:
    """Appends Batch API lines to ``FILE.part`` on the I/O thread; ``close`` renames it to ``FILE``."""

    def __init__(self, dest: Path, out_dir: Path, io: OutputWriter) -> None:
        self.dest = dest
        self.part = dest.with_name(dest.name + ".part")
        self.out_dir = out_dir
        self.lines = 0
        self._io = io
        self._fd: int | None = None
        self._folder: SafeDir | None = None  # the results file's directory, held open

    async def open(self) -> None:
        try:
            self._fd = await self._io.call(self._open)
        except OSError as exc:
            raise OutputDirError(f"{self.part}: cannot write: {exc.strerror or exc}") from None

    async def add(self, entries: list[dict[str, Any]]) -> None:
        """Lines for items this run finished (their files are already in place)."""
        await self._io.call(self._append, entries)

    async def add_finished(self, done: list[Finished]) -> None:
        """Lines for items an earlier run finished, read back from their manifest entries."""
        await self._io.call(self._append_finished, done)

    async def close(self) -> None:
        await self._io.call(self._close)

    # -- on the I/O thread -------------------------------------------------------------------
    def _open(self) -> int:
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self._folder = SafeDir(self.dest.parent)  # named by the user: a symlink there is their choice
        try:
            return self._folder.create(self.part.name)  # fresh: a planted link raises
        except OSError:
            self._folder.close()
            self._folder = None
            raise

    def _outputs(self, entry: dict[str, Any]) -> list[dict[str, Any]] | None:
        """What each choice produced, read from its files next to the answer file the manifest names."""
        if entry.get("status") not in ("ok", "refused"):
            return None
        single = {
            "index": 0,
            "file": entry.get("file"),
            "finish_reason": entry.get("finish_reason"),
            "refusal_chars": entry.get("refusal_chars"),
            "tool_calls": entry.get("tool_calls"),
        }
        outputs = []
        for choice in entry.get("choices") or [single]:
            answer = self.out_dir / str(choice.get("file"))
            stem = answer.name.rsplit(".", 1)[0]
            content = _read(answer)
            refusal = _read(self.out_dir / f"{stem}.refusal.txt") if choice.get("refusal_chars") else None
            calls = _read(self.out_dir / f"{stem}.tool_calls.json") if choice.get("tool_calls") else None
            if content is None and refusal is None and calls is None:
                return None  # the files are gone: say so rather than answer with nothing
            outputs.append(
                {
                    "index": choice.get("index", 0),
                    "content": content,
                    "refusal": refusal,
                    "tool_calls": json.loads(calls) if calls else None,
                    "finish_reason": choice.get("finish_reason"),
                }
            )
        return outputs

    def _append(self, entries: list[dict[str, Any]]) -> None:
        if self._fd is None:
            return
        data = b"".join(
            # A lone surrogate in an id becomes its JSON escape: the file stays valid UTF-8.
            json.dumps(batch_line(entry, self._outputs(entry)), ensure_ascii=False).encode("utf-8", "backslashreplace")
            + b"\n"
            for entry in entries
        )
        try:
            write_all(self._fd, data)
        except OSError as exc:
            raise DiskError(f"{self.part}: {exc.strerror or exc}") from None
        self.lines += len(entries)

    def _append_finished(self, done: list[Finished]) -> None:
        entries = []
        for item in done:
            if item.source is None:
                continue
            try:
                entry = read_entry(item.source, item.offset)
            except OSError as exc:
                raise DiskError(f"{item.source}: {exc.strerror or exc}") from None
            if entry is not None:
                entries.append(entry)
        self._append(entries)

    def _close(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        folder, self._folder = self._folder, None
        assert folder is not None
        try:
            folder.rename_own(fd, self.part.name, self.dest.name)
        except OSError as exc:
            raise DiskError(f"{self.dest}: {exc.strerror or exc}") from None
        finally:
            os.close(fd)
            folder.close()
