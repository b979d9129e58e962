"""The gate every request passes before it starts: --rpm and --tpm buckets, the run-wide pause
after a 429, and the pause the server's rate-limit headers call for.

Waiters are served in order: one lock, held while the head of the line waits for its turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .ratelimit import TokenBucket


class Gate:
    def __init__(
        self, *, rpm: float | None = None, tpm: float | None = None, clock: Callable[[], float] | None = None
    ) -> None:
        self._clock = clock or asyncio.get_running_loop().time
        now = self._clock()
        self.requests = TokenBucket.per_minute(rpm, now=now, min_capacity=1.0) if rpm else None
        self.tokens = TokenBucket.per_minute(tpm, now=now) if tpm else None
        self._resume_at = 0.0
        self._lock = asyncio.Lock()

    @property
    def counts_tokens(self) -> bool:
        return self.tokens is not None

    def pause_for(self, seconds: float) -> None:
        """No request starts until ``seconds`` from now (a later pause wins)."""
        self._resume_at = max(self._resume_at, self._clock() + seconds)

    def _delay(self, now: float, tokens: int) -> float:
        delay = self._resume_at - now
        if self.requests is not None:
            delay = max(delay, self.requests.wait_time(now, 1))
        if self.tokens is not None:
            delay = max(delay, self.tokens.wait_time(now, tokens))
        return delay

    async def acquire(self, tokens: int = 0) -> None:
        """Wait for this request's turn, then take one request and ``tokens`` from the buckets."""
        async with self._lock:
            # A loop, not an Event: a 429 or a header may push the resume time while we sleep.
            while (delay := self._delay(self._clock(), tokens)) > 0:  # noqa: ASYNC110
                await asyncio.sleep(delay)
            now = self._clock()
            if self.requests is not None:
                self.requests.take(now, 1)
            if self.tokens is not None:
                self.tokens.take(now, tokens)

    def release(self, reserved: int, used: int) -> None:
        """Give back the part of a token reservation the request did not use."""
        if self.tokens is not None and used < reserved:
            self.tokens.give_back(self._clock(), reserved - used)
