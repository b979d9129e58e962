"""The files one attempt streams into: each choice's answer, and its reasoning and refusal.

Choice 0's answer file is opened when the stream opens (``tail -f`` shows it at once); every
other file when its first text arrives.  All of them are part files until the stream completes;
then they are renamed together, and each choice's tool calls are written as JSON.  A choice that
refused and wrote no answer text gets no answer file: a refusal is not an answer.

File I/O goes through the ``OutputWriter`` (its one I/O thread); this module only decides.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .choices import ANSWER, REASONING, REFUSAL, Choices
from .layout import Layout
from .output import OutputWriter, PartFile


def _nothing() -> None:
    return None


class PartSet:
    __slots__ = (
        "_dropped",
        "_on_text",
        "_writer",
        "choices",
        "closed",
        "completed",
        "first",
        "keep_reasoning",
        "layout",
        "parts",
        "produced",
        "tool_call_files",
    )

    def __init__(
        self,
        writer: OutputWriter,
        layout: Layout,
        *,
        keep_reasoning: bool = True,
        on_text: Callable[[], None] = _nothing,
    ) -> None:
        self.layout = layout
        self.keep_reasoning = keep_reasoning
        self._writer = writer
        self._on_text = on_text
        self.first = writer.open(layout.answer(0))
        self.parts: dict[tuple[str, int], PartFile] = {(ANSWER, 0): self.first}
        self.choices = Choices(self.write, layout.n)
        self._dropped: dict[int, int] = {}  # reasoning characters not kept (--no-reasoning), by choice
        self.closed = False
        self.completed = False  # every file renamed to its final name: the answer is on disk
        self.produced: list[Path] = []  # streamed files renamed to their final names
        self.tool_call_files: list[Path] = []

    def write(self, kind: str, index: int, text: str) -> None:
        """The sink of ``Choices``: text of any kind, for any choice."""
        self._on_text()
        if kind == REASONING and not self.keep_reasoning:
            self._dropped[index] = self._dropped.get(index, 0) + len(text)
            return
        part = self.parts.get((kind, index))
        if part is None:
            part = self.parts[kind, index] = self._writer.open(self.layout.streamed(kind, index))
        self._writer.write(part, text)

    # -- counts -----------------------------------------------------------------------------
    def chars(self, kind: str, index: int | None = None) -> int:
        """Characters received of one kind, for one choice or (``None``) all of them."""
        total = sum(p.chars for (k, i), p in self.parts.items() if k == kind and index in (None, i))
        if kind == REASONING:
            total += sum(c for i, c in self._dropped.items() if index in (None, i))
        return total

    @property
    def received(self) -> int:
        """Every character of text this attempt received."""
        return sum(part.chars for part in self.parts.values()) + sum(self._dropped.values())

    def kept_parts(self) -> list[Path]:
        """Part files with text in them: what an attempt that did not complete leaves behind."""
        return [part.part for part in self.parts.values() if part.chars]

    async def answer_texts(self) -> dict[int, str]:
        """Each choice's answer text, read back from its part file once every piece is written."""
        await self._writer.write_files([])  # a barrier: the pieces still queued reach the files first
        paths = {index: part.part for (kind, index), part in self.parts.items() if kind == ANSWER and part.chars}
        texts = await self._writer.call(_read_texts, list(paths.values()))
        return dict(zip(paths, texts, strict=True))

    # -- the end of the stream --------------------------------------------------------------
    async def close(self, *, complete: bool) -> None:
        """Close every part file; when ``complete``, rename them and write the tool calls."""
        self.closed = True
        writer = self._writer
        refused = self.choices.refused
        if complete:
            for index in self.choices.indices:
                if (ANSWER, index) not in self.parts and index not in refused:
                    self.parts[ANSWER, index] = writer.open(self.layout.answer(index))
        finishing = []
        for (kind, index), part in self.parts.items():
            if part.closing:
                continue
            keep = complete and not (kind == ANSWER and index in refused and part.chars == 0)
            if keep:
                self.produced.append(part.final)
            finishing.append(writer.finish(part, complete=keep))
        for outcome in await asyncio.gather(*finishing, return_exceptions=True):
            if isinstance(outcome, BaseException):  # every file closed first, each error retrieved
                raise outcome
        if complete:
            files = []
            for index in self.choices.indices:
                calls = self.choices.tool_calls(index)
                if calls:
                    data = (json.dumps(calls, indent=2, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")
                    files.append((self.layout.tool_calls(index), data))
            if files:
                await writer.write_files(files)
                self.tool_call_files = [path for path, _ in files]
            self.completed = True

    # -- what the manifest says -------------------------------------------------------------
    def manifest_fields(self) -> dict[str, Any]:
        """Reasoning, refusal and tool-call counts; with several choices, a line for each."""
        choices = self.choices
        fields: dict[str, Any] = {
            "reasoning_chars": self.chars(REASONING),
            "refusal_chars": self.chars(REFUSAL),
            "tool_calls": sum(len(choices.tool_calls(index)) for index in choices.indices),
        }
        if self.layout.n > 1 or choices.indices != [0]:
            fields["choices"] = [
                {
                    "index": index,
                    "file": self.layout.answer(index).name,
                    "finish_reason": choices.finished.get(index),
                    "chars": self.chars(ANSWER, index),
                    "reasoning_chars": self.chars(REASONING, index),
                    "refusal_chars": self.chars(REFUSAL, index),
                    "tool_calls": len(choices.tool_calls(index)),
                }
                for index in choices.indices
            ]
        return fields


def _read_texts(paths: list[Path]) -> list[str]:
    return [path.read_text("utf-8", errors="replace") for path in paths]


def empty_fields() -> dict[str, Any]:
    """``manifest_fields`` for an item whose stream never opened."""
    return {"reasoning_chars": 0, "refusal_chars": 0, "tool_calls": 0}


def leftovers(layout: Layout, files: PartSet | None, *, succeeded: bool) -> list[Path]:
    """Files of this item the last attempt did not write, to be removed as the item ends.

    After a success: every side file and part file not written now (an earlier run's reasoning
    file, an earlier attempt's part file).  After a failure: only part files without text of the
    last attempt's; complete files of an earlier run are left as they are.
    """
    indices = files.choices.indices if files is not None else list(range(layout.n))
    keep: set[Path] = set()
    if files is not None:
        keep.update(files.produced, files.tool_call_files)
        if not succeeded:
            keep.update(files.kept_parts())
    paths = layout.side_paths(indices)
    if not succeeded:
        paths = [path for path in paths if path.name.endswith(".part")]
    return [path for path in paths if path not in keep]
