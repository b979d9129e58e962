"""The one retry policy: which failures are retried, and how long to wait. Pure; no I/O.

openai's own retries are switched off (``max_retries=0``); the runner retries the whole block
"open the stream, write the part file, finish" with the delay computed here.
"""

from __future__ import annotations

import email.utils
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from . import _constants as C

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
    for header, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
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
