"""When does each piece become readable?  A thread that polls a sample of the output files.

The simulator (``--fast --timeline``) reports when each tick went out and which tick began each
prompt's stream, so piece k of a stream was sent at tick ``joined + k``.  This watcher knows every
sampled stream's text (the simulator's text is deterministic), so it knows the byte offset at
which each piece ends; it stats the sampled files every ``interval`` seconds and notes, for each
piece, the first poll at which the file was at least that long.  The delay of a piece is that
poll's time minus the tick's time: an upper bound (the poll comes after the write), with the
poll interval as its resolution.  Both times are ``time.monotonic()``, one clock for every
process on Linux.

A piece "seen alone" is one for which some poll found the file ending exactly after it: it was
written as it arrived, not batched with the next one.  The watcher runs in the benchmark's own
process, not the client's, so it takes no CPU from the client; it stats at most ``sample``
files per poll.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from streamdump.simulator.script import response_pieces


@dataclass(slots=True)
class _Watched:
    prompt: str
    paths: tuple[Path, ...]  # the first that exists gives the size (part file, then final)
    ends: list[int]  # byte offset at which piece k (1-based: ends[k - 1]) ends
    seen: list[float] = field(default_factory=list)  # poll time at which piece k was first readable
    alone: set[int] = field(default_factory=set)


def piece_ends(prompt: str, length: int) -> list[int]:
    ends, total = [], 0
    for piece in response_pieces(prompt, length=length):
        total += len(piece.encode("utf-8"))
        ends.append(total)
    return ends


class DiskWatcher:
    """``start()``, let the client run, ``stop()``, then ``delays(timeline)``."""

    def __init__(self, files: list[tuple[str, tuple[Path, ...]]], length: int, interval: float) -> None:
        self._watched = [_Watched(prompt, paths, piece_ends(prompt, length)) for prompt, paths in files]
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="disk-watcher", daemon=True)
        self.polls = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _size(self, item: _Watched) -> int:
        for path in item.paths:
            try:
                return os.stat(path).st_size
            except FileNotFoundError:
                continue
        return 0

    def _run(self) -> None:
        pending = list(self._watched)
        while pending and not self._stop.is_set():
            started = time.monotonic()
            still = []
            for item in pending:
                size = self._size(item)
                now = time.monotonic()
                while len(item.seen) < len(item.ends) and size >= item.ends[len(item.seen)]:
                    if size == item.ends[len(item.seen)]:
                        item.alone.add(len(item.seen))
                    item.seen.append(now)
                if len(item.seen) < len(item.ends):
                    still.append(item)
            pending = still
            self.polls += 1
            self._stop.wait(max(0.0, self._interval - (time.monotonic() - started)))

    def delays(self, tick_times: list[float], joined: dict[str, int]) -> tuple[list[float], int, int]:
        """(delay of every piece seen, pieces seen alone, pieces expected) for the sampled streams."""
        delays: list[float] = []
        alone = expected = 0
        for item in self._watched:
            first = joined.get(item.prompt)
            if first is None:
                continue
            expected += len(item.ends)
            alone += len(item.alone)
            for index, seen in enumerate(item.seen):
                tick = first + index + 1  # piece k goes out k ticks after the role chunk
                if tick <= len(tick_times):
                    delays.append(seen - tick_times[tick - 1])
        return delays, alone, expected
