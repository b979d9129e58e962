"""Rate-limit arithmetic: token buckets and the server's x-ratelimit-* headers. Pure; no I/O.

Providers enforce per-minute limits over shorter windows, so the load is spread evenly: a bucket
holds one second's worth and refills continuously.  By ``t`` seconds after the start, at most
``capacity + rate * t`` has been taken, plus the overshoot of one request larger than a second's
budget (it waits for a full bucket, then runs alone).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    rate: float  # units per second
    capacity: float
    level: float
    updated: float

    @classmethod
    def per_minute(cls, per_minute: float, *, now: float, min_capacity: float = 0.0) -> TokenBucket:
        rate = per_minute / 60.0
        capacity = max(min_capacity, rate)
        return cls(rate=rate, capacity=capacity, level=capacity, updated=now)

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
            self.updated = now

    def wait_time(self, now: float, cost: float) -> float:
        """Seconds until ``cost`` may be taken (a cost above capacity waits for a full bucket)."""
        self._refill(now)
        need = min(cost, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate

    def take(self, now: float, cost: float) -> None:
        self._refill(now)
        self.level -= cost

    def give_back(self, now: float, amount: float) -> None:
        self._refill(now)
        self.level = min(self.capacity, self.level + amount)


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?")


def parse_reset(value: str | None) -> float | None:
    """``x-ratelimit-reset-*`` values as OpenAI sends them ("1s", "6m0s", "20ms", "1h2m3.5s") or plain
    seconds ("0.5"), in seconds; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    match = _DURATION.fullmatch(value)
    if match is None or not any(match.groups()):
        return None
    hours, minutes, seconds, millis = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def header_pause(headers: Mapping[str, str], *, in_flight: int, next_cost: int) -> float:
    """How long to hold new requests, given a response's rate-limit headers.

    Slow down before zero instead of bouncing off a 429: when the requests left in the window
    would be used up by the requests already in flight, or the tokens left would not cover that
    many more requests of ``next_cost``, wait for the window's reset.
    """
    pause = 0.0
    remaining = _int_header(headers, "x-ratelimit-remaining-requests")
    if remaining is not None and remaining <= in_flight:
        pause = max(pause, parse_reset(headers.get("x-ratelimit-reset-requests")) or 0.0)
    tokens = _int_header(headers, "x-ratelimit-remaining-tokens")
    if tokens is not None and tokens < next_cost * max(1, in_flight):
        pause = max(pause, parse_reset(headers.get("x-ratelimit-reset-tokens")) or 0.0)
    return pause
