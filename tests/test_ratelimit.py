"""Token buckets with an injected clock, and the rate-limit headers (pure)."""

from __future__ import annotations

import pytest

from streamdump.ratelimit import TokenBucket, header_pause, parse_reset


def test_bucket_starts_with_one_seconds_worth_and_refills_evenly() -> None:
    bucket = TokenBucket.per_minute(600, now=0.0)  # 10 a second
    assert bucket.capacity == 10
    for _ in range(10):
        assert bucket.wait_time(0.0, 1) == 0
        bucket.take(0.0, 1)
    assert bucket.wait_time(0.0, 1) == pytest.approx(0.1)
    assert bucket.wait_time(0.5, 1) == 0  # five more have refilled
    assert bucket.level == pytest.approx(5)


def test_bucket_never_holds_more_than_capacity() -> None:
    bucket = TokenBucket.per_minute(60, now=0.0, min_capacity=1.0)
    assert bucket.wait_time(1000.0, 1) == 0
    assert bucket.level == 1


def test_slow_rpm_still_allows_one_request() -> None:
    bucket = TokenBucket.per_minute(6, now=0.0, min_capacity=1.0)  # one every 10 s
    assert bucket.capacity == 1
    bucket.take(0.0, 1)
    assert bucket.wait_time(0.0, 1) == pytest.approx(10)


def test_cost_above_capacity_waits_for_a_full_bucket_then_goes_into_debt() -> None:
    bucket = TokenBucket.per_minute(6000, now=0.0)  # 100 a second
    bucket.take(0.0, 50)
    assert bucket.wait_time(0.0, 250) == pytest.approx(0.5)  # waits for 100, not 250
    bucket.take(0.5, 250)
    assert bucket.level == pytest.approx(-150)
    assert bucket.wait_time(0.5, 10) == pytest.approx(1.6)


def test_give_back_is_capped() -> None:
    bucket = TokenBucket.per_minute(6000, now=0.0)
    bucket.take(0.0, 80)
    bucket.give_back(0.0, 30)
    assert bucket.level == pytest.approx(50)
    bucket.give_back(0.0, 1000)
    assert bucket.level == 100


@pytest.mark.parametrize("rpm", [1, 7, 60, 90, 600, 6000])
def test_started_requests_never_exceed_the_even_spread(rpm: int) -> None:
    """By time t, at most max(1, rpm/60) + rpm/60 * t requests have started."""
    bucket = TokenBucket.per_minute(rpm, now=0.0, min_capacity=1.0)
    now, started = 0.0, 0
    while now < 120:
        now += bucket.wait_time(now, 1)
        bucket.take(now, 1)
        started += 1
        assert started <= max(1, rpm / 60) + rpm / 60 * now + 1e-9


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("0.5", 0.5),
        ("2m", 120.0),
        ("soon", None),
        ("-3", 0.0),
    ],
)
def test_parse_reset(value: str | None, seconds: float | None) -> None:
    assert parse_reset(value) == (None if seconds is None else pytest.approx(seconds))


@pytest.mark.parametrize(
    ("headers", "in_flight", "cost", "pause"),
    [
        ({}, 4, 100, 0.0),
        ({"x-ratelimit-remaining-requests": "10", "x-ratelimit-reset-requests": "2s"}, 4, 100, 0.0),
        ({"x-ratelimit-remaining-requests": "4", "x-ratelimit-reset-requests": "2s"}, 4, 100, 2.0),
        ({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "150ms"}, 1, 100, 0.15),
        ({"x-ratelimit-remaining-tokens": "1000", "x-ratelimit-reset-tokens": "3s"}, 4, 100, 0.0),
        ({"x-ratelimit-remaining-tokens": "399", "x-ratelimit-reset-tokens": "3s"}, 4, 100, 3.0),
        (
            {
                "x-ratelimit-remaining-requests": "1",
                "x-ratelimit-reset-requests": "1s",
                "x-ratelimit-remaining-tokens": "0",
                "x-ratelimit-reset-tokens": "5s",
            },
            2,
            10,
            5.0,
        ),
        ({"x-ratelimit-remaining-requests": "nope", "x-ratelimit-reset-requests": "1s"}, 1, 1, 0.0),
    ],
)
def test_header_pause(headers: dict[str, str], in_flight: int, cost: int, pause: float) -> None:
    assert header_pause(headers, in_flight=in_flight, next_cost=cost) == pytest.approx(pause)
