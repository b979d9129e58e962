"""The retry policy's arithmetic (pure)."""

from __future__ import annotations

import email.utils

import pytest

from streamdump.retry import RetryPolicy, backoff_delay, is_retried_status, parse_retry_after

P = RetryPolicy(max_retries=5, backoff_base=1.0, backoff_max=10.0, max_retry_after=30.0)


@pytest.mark.parametrize(
    ("status", "retried"),
    [
        (408, True),
        (409, True),
        (429, True),
        (500, True),
        (503, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (422, False),
    ],
)
def test_which_statuses_are_retried(status: int, retried: bool) -> None:
    assert is_retried_status(status) is retried


@pytest.mark.parametrize(
    ("retry", "ceiling"), [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (50, 10.0), (5000, 10.0)]
)
def test_backoff_is_capped_exponential_with_full_jitter(retry: int, ceiling: float) -> None:
    assert backoff_delay(retry, P, rand=lambda: 1.0) == ceiling
    assert backoff_delay(retry, P, rand=lambda: 0.0) == 0.0
    assert backoff_delay(retry, P, rand=lambda: 0.5) == ceiling / 2


@pytest.mark.parametrize(
    ("retry_after", "delay"), [(0.0, 0.0), (2.5, 2.5), (30.0, 30.0), (31.0, 30.0), (1e9, 30.0), (float("inf"), 30.0)]
)
def test_retry_after_wins_but_is_capped(retry_after: float, delay: float) -> None:
    assert backoff_delay(3, P, retry_after=retry_after, rand=lambda: 1.0) == delay


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({}, None),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after-ms": "nan"}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    assert parse_retry_after(headers, now=1000.0) == seconds


def test_parse_retry_after_http_date() -> None:
    now = 1_800_000_000.0
    header = email.utils.formatdate(now + 42, usegmt=True)
    assert parse_retry_after({"retry-after": header}, now=now) == pytest.approx(42, abs=1)
