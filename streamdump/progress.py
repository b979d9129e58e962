"""Progress on stderr: a tqdm bar on a terminal, a plain line every few seconds otherwise
(cron, CI), only errors and the final summary with ``quiet``.

Writes to stderr happen on the event loop: they are small, and a terminal or a log file is the
one place a user watches.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from . import _constants as C
from .apikey import redact
from .cost import usd


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    def __init__(
        self,
        total: int,
        *,
        quiet: bool = False,
        stream: TextIO | None = None,
        interval: float = C.PROGRESS_INTERVAL,
        priced: bool = False,
        cap: float | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.total = total
        self.quiet = quiet
        self.interval = interval
        self.done = 0
        self.failed = 0
        self.tokens = 0
        self.requests = 0
        self.spent: float | None = 0.0 if priced else None  # USD, when the run has prices to count with
        self.cap = cap  # --max-cost
        self.started = time.monotonic()
        self._last_line = self.started
        self._bar = None
        if not quiet and self.stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, file=self.stream, unit="item", dynamic_ncols=True, smoothing=0.1)

    def item(self, status: str, completion_tokens: int) -> None:
        self.done += 1
        self.failed += status != "ok"
        self.tokens += completion_tokens
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix_str(
                f"failed={self.failed} tok/s={self._rate():.0f} req/min={self._per_minute():.0f}{self._spend(' ')}",
                refresh=False,
            )
        elif not self.quiet:
            now = time.monotonic()
            if now - self._last_line >= self.interval:
                self._last_line = now
                self._plain(now)

    def request(self) -> None:
        """A request (an attempt) has started."""
        self.requests += 1

    def spend(self, amount: float) -> None:
        """An attempt cost ``amount`` USD."""
        self.spent = (self.spent or 0.0) + amount

    def _spend(self, sep: str) -> str:
        if self.spent is None:
            return ""
        cap = "" if self.cap is None else f" of {usd(self.cap)}"
        return f"{sep}spent={usd(self.spent)}{cap}" if sep == " " else f"{sep}{usd(self.spent)}{cap} spent"

    def _per_minute(self) -> float:
        return self.requests * 60 / max(time.monotonic() - self.started, 1e-9)

    def _rate(self) -> float:
        return self.tokens / max(time.monotonic() - self.started, 1e-9)

    def _plain(self, now: float) -> None:
        elapsed = now - self.started
        eta = ""
        if self.done and self.total > self.done:
            eta = f", eta {_duration(elapsed / self.done * (self.total - self.done))}"
        print(
            f"streamdump: {self.done}/{self.total} done, {self.failed} not ok, "
            f"{self._rate():.0f} tok/s, {self._per_minute():.0f} req/min{self._spend(', ')}, "
            f"{_duration(elapsed)} elapsed{eta}",
            file=self.stream,
            flush=True,
        )

    def note(self, message: str) -> None:
        """A retry or a warning: shown unless quiet."""
        if not self.quiet:
            self.error(message)

    def error(self, message: str) -> None:
        """Always shown (never with the API key in it)."""
        message = redact(message)
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
