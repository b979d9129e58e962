"""The one retry policy: which failures are retried, how long to wait, and the loop that drives
the attempts at one item (``attempts``). No I/O but the wait.

openai's own retries are switched off (``max_retries=0``); the item retries the whole block
"open the stream, write the part file, finish" with the delay computed here.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass

from . import _constants as C
from .errors import AttemptError

RETRIED_STATUSES = frozenset({408, 409, 429})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = C.MAX_RETRIES
    backoff_base: float = C.BACKOFF_BASE
    backoff_max: float = C.BACKOFF_MAX
    max_retry_after: float = C.MAX_RETRY_AFTER


def is_retried_status(status: int) -> bool:
    return status in RETRIED_STATUSES or status >= 500


def parse_retry_after(headers: Mapping[str, str], *, now: float) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms``, ``retry-after`` seconds or date."""
    # llm_provider-retry-after: LiteLLM's proxy passes its upstream's Retry-After under this name.
    for header, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0), ("llm_provider-retry-after", 1.0)):
        value = headers.get(header)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        if math.isnan(seconds):
            continue
        return max(0.0, seconds)  # an infinite wait is capped by the caller
    value = headers.get("retry-after")
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is not None and when.tzinfo is not None:
            return max(0.0, when.timestamp() - now)
    return None


def backoff_delay(
    retry: int,
    policy: RetryPolicy,
    *,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Delay before retry number ``retry`` (1 = the first retry).

    The server's Retry-After wins, capped by ``max_retry_after``; otherwise capped exponential
    backoff with full jitter: uniform in [0, min(backoff_max, base * 2**(retry-1))].
    """
    if retry_after is not None:
        return min(max(retry_after, 0.0), policy.max_retry_after)
    ceiling = min(policy.backoff_max, policy.backoff_base * 2.0 ** min(retry - 1, 60))
    return ceiling * rand()


class Attempt:
    """One attempt, as a block: ``with attempt: ...``.  An ``AttemptError`` raised in the block is
    kept for the driver to judge (it ends the block quietly); anything else goes through."""

    __slots__ = ("error", "number", "redo")

    def __init__(self, number: int) -> None:
        self.number = number  # 1 for the first
        self.error: AttemptError | None = None
        self.redo = False  # ask again at once, not counted as a retry (e.g. without an option)

    def again(self) -> None:
        """The next attempt is not a retry of this one: the request changes (an option dropped)."""
        self.redo = True

    def __enter__(self) -> Attempt:
        return self

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> bool:
        if isinstance(exc, AttemptError):
            self.error = exc
            return True
        return False


async def attempts(
    policy: RetryPolicy,
    *,
    stopped: Callable[[], bool] = lambda: False,
    on_failure: Callable[[AttemptError, float, bool], None] | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> AsyncGenerator[Attempt, None]:
    """The retry policy as the driver of a block (stamina's ``retry_context`` is the model)::

        async for attempt in attempts(policy):
            with attempt:
                ...  # open the stream, write the files, finish

    The loop ends after the first attempt that raises nothing.  After a failed one it waits the
    policy's delay and tries again while the error is retryable, retries are left and ``stopped()``
    is false; otherwise the last error is raised out of the loop.  ``on_failure(error, delay,
    retrying)`` hears of every failed attempt first (a 429's delay pauses the whole run, whether or
    not this item tries again).
    """
    retries = 0
    number = 0
    while True:
        number += 1
        attempt = Attempt(number)
        yield attempt
        error = attempt.error
        if error is None:
            return
        if attempt.redo:
            continue
        delay = backoff_delay(retries + 1, policy, retry_after=error.retry_after)
        retrying = error.retryable and retries < policy.max_retries and not stopped()
        if on_failure is not None:
            on_failure(error, delay, retrying)
        if not retrying:
            raise error
        retries += 1
        await sleep(delay)
