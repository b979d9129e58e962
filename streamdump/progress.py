"""Progress on stderr: a tqdm bar on a terminal, a plain line every few seconds otherwise
(cron, CI), only errors and the final summary with ``quiet``.

A transient retry is counted (``retries=N`` on the bar, ``N retries`` on a plain line), not
printed, unless ``verbose``; an item's final failure is one line.  Plain lines start with an
ISO-8601 time, for logs read at 3 a.m.  Cancelled items (Ctrl-C) are counted as cancelled, not
failed.

Writes to stderr happen on the event loop: they are small, and a terminal or a log file is the
one place a user watches.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import TextIO

from . import _constants as C
from .apikey import redact
from .cost import usd

# The bar's own text is short, so the counts stay whole in an 80-column terminal.
BAR_FORMAT = "{n_fmt}/{total_fmt} |{bar}| {elapsed}<{remaining}{postfix}"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def stamp(now: float | None = None) -> str:
    """Local time, ISO-8601 with its UTC offset, to the second."""
    return datetime.fromtimestamp(time.time() if now is None else now).astimezone().isoformat(timespec="seconds")


def _short(number: float) -> str:
    return f"{number / 1000:.1f}k" if number >= 10_000 else f"{number:.0f}"


class Progress:
    def __init__(
        self,
        total: int,
        *,
        quiet: bool = False,
        verbose: bool = False,
        stream: TextIO | None = None,
        interval: float = C.PROGRESS_INTERVAL,
        priced: bool = False,
        cap: float | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.total = total
        self.quiet = quiet
        self.verbose = verbose and not quiet
        self.interval = interval
        self.done = 0
        self.failed = 0  # not ok: failed or refused
        self.cancelled = 0
        self.retries = 0
        self.tokens = 0
        self.requests = 0
        self.spent: float | None = 0.0 if priced else None  # USD, when the run has prices to count with
        self.cap = cap  # --max-cost
        self.started = time.monotonic()
        self._last_line = self.started
        self._bar = None
        if not quiet and self.stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                file=self.stream,
                unit="item",
                dynamic_ncols=True,
                smoothing=0.1,
                bar_format=BAR_FORMAT,
            )

    def item(self, status: str, completion_tokens: int) -> None:
        self.done += 1
        if status == "cancelled":
            self.cancelled += 1
        elif status != "ok":
            self.failed += 1
        self.tokens += completion_tokens
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix_str(self.counts(), refresh=False)
        elif not self.quiet:
            now = time.monotonic()
            if now - self._last_line >= self.interval:
                self._last_line = now
                self._plain(now)

    def counts(self) -> str:
        """The bar's counts: only those that are not zero, and the token rate."""
        parts = [
            f"{name}={value}"
            for name, value in (("failed", self.failed), ("cancelled", self.cancelled), ("retries", self.retries))
            if value
        ]
        return " ".join([*parts, f"{_short(self._rate())} tok/s"]) + self._spend(" ")

    def request(self) -> None:
        """A request (an attempt) has started."""
        self.requests += 1

    def retry(self, message: str) -> None:
        """A transient failure that will be retried: counted; printed only when verbose."""
        self.retries += 1
        if self._bar is not None:
            self._bar.set_postfix_str(self.counts(), refresh=False)
        if self.verbose:
            self.error(message)

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
        cancelled = f", {self.cancelled} cancelled" if self.cancelled else ""
        self._line(
            f"streamdump: {self.done}/{self.total} done, {self.failed} not ok{cancelled}, {self.retries} retries, "
            f"{self._rate():.0f} tok/s, {self._per_minute():.0f} req/min{self._spend(', ')}, "
            f"{_duration(elapsed)} elapsed{eta}"
        )

    def note(self, message: str) -> None:
        """A warning: shown unless quiet."""
        if not self.quiet:
            self.error(message)

    def error(self, message: str) -> None:
        """Always shown (never with the API key in it)."""
        message = redact(message)
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        else:
            self._line(message)

    def _line(self, message: str) -> None:
        print(f"{stamp()} {message}", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
