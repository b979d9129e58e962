"""Where one item's files go in the out-dir. Pure; no I/O.

For an item named ``<name>`` (see ``naming``) and the answer extension ``<ext>`` (``--ext``)::

    <name>.<ext>              the answer                    (n > 1: <name>.1.<ext>, <name>.2.<ext>, ...)
    <name>.reasoning.txt      reasoning text, when any came (n > 1: <name>.1.reasoning.txt, ...)
    <name>.refusal.txt        refusal text, when any came   (n > 1: <name>.1.refusal.txt, ...)
    <name>.tool_calls.json    assembled tool calls          (n > 1: <name>.1.tool_calls.json, ...)
    <name>.error.json         after the last attempt failed (one per item)

Streamed files are written as ``<file>.part`` and renamed when the stream completes.  ``naming``
hashes every id that ends like one of these (``.reasoning``, ``.refusal``, ``.tool_calls``,
``.error``, ``.part``, ``.<digits>``), so no id's files can land on another item's; ``check_ext``
keeps ``--ext`` from reopening that door.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .choices import ANSWER, REASONING, REFUSAL

DEFAULT_EXT = "txt"
PART = ".part"
_EXT = re.compile(r"[A-Za-z0-9]{1,16}")
# A part file is <file>.part and replace_file writes .<file>.<random>.tmp: an answer must end in neither.
_FORBIDDEN_EXT = frozenset({"part", "tmp"})
STREAMED = (ANSWER, REASONING, REFUSAL)


def check_ext(ext: str) -> str:
    """The answer file's extension, without a leading dot. Raises ValueError saying what is wrong."""
    bare = ext[1:] if ext.startswith(".") else ext
    if not _EXT.fullmatch(bare):
        raise ValueError(f"--ext {ext!r}: use 1 to 16 letters or digits, such as md or txt")
    if bare.lower() in _FORBIDDEN_EXT:
        raise ValueError(f"--ext {ext!r}: streamdump uses .{bare.lower()} for its own files")
    return bare


@dataclass(frozen=True, slots=True)
class Layout:
    out_dir: Path
    name: str
    ext: str = DEFAULT_EXT
    n: int = 1  # choices asked for

    def _stem(self, index: int) -> str:
        """``<name>`` for the only choice, ``<name>.<index + 1>`` when there are several."""
        return self.name if self.n == 1 and index == 0 else f"{self.name}.{index + 1}"

    def answer(self, index: int = 0) -> Path:
        return self.out_dir / f"{self._stem(index)}.{self.ext}"

    def streamed(self, kind: str, index: int = 0) -> Path:
        """The final path of a streamed file: the answer, the reasoning or the refusal of a choice."""
        if kind == ANSWER:
            return self.answer(index)
        return self.out_dir / f"{self._stem(index)}.{kind}.txt"

    def tool_calls(self, index: int = 0) -> Path:
        return self.out_dir / f"{self._stem(index)}.tool_calls.json"

    def error(self) -> Path:
        return self.out_dir / f"{self.name}.error.json"

    def answer_names(self) -> list[str]:
        """The answer files that must exist for an ``ok`` item to count as done."""
        return [self.answer(index).name for index in range(self.n)]

    def side_paths(self, indices: list[int]) -> list[Path]:
        """Every file (and part file) the given choices could have left behind, the error record apart."""
        paths: list[Path] = []
        for index in indices:
            for kind in STREAMED:
                final = self.streamed(kind, index)
                paths += [final, part_path(final)]
            paths.append(self.tool_calls(index))
        return paths


def part_path(final: Path) -> Path:
    return final.with_name(final.name + PART)
