"""The prompts file's lines during the run, read off the event loop in large blocks.

On a slow or network filesystem a blocking read on the loop would hold every open stream still.
aiofiles runs each read in a thread; one hop per block of ``INPUT_BLOCK`` bytes, not one per line.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import aiofiles

from . import _constants as C


async def read_lines(path: str, *, limit: int | None = None, block: int = C.INPUT_BLOCK) -> AsyncGenerator[bytes, None]:
    """Every line of ``path`` (without its ``\\n``), reading no more than ``limit`` bytes.

    A line longer than a block is kept as the pieces it came in and joined once.
    """
    pieces: list[bytes] = []
    consumed = 0
    async with aiofiles.open(path, "rb") as source:
        while limit is None or consumed < limit:
            data = await source.read(block if limit is None else min(block, limit - consumed))
            if not data:
                break
            consumed += len(data)
            if b"\n" not in data:
                pieces.append(data)
                continue
            if pieces:
                data = b"".join([*pieces, data])
                pieces = []
            lines = data.split(b"\n")
            rest = lines.pop()
            if rest:
                pieces.append(rest)
            for line in lines:
                yield line
    if pieces:
        yield b"".join(pieces)
