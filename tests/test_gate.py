"""The gate: buckets, reservations given back, and pauses, on an injected clock."""

from __future__ import annotations

import asyncio

import pytest

from streamdump.gate import Gate


class Clock:
    """A clock the test moves; asyncio.sleep is replaced by moving it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds: float) -> None:
        clock.now += seconds
        await real_sleep(0)

    monkeypatch.setattr("streamdump.gate.asyncio.sleep", fake_sleep)
    return clock


def test_rpm_spreads_requests_evenly(clock: Clock) -> None:
    async def main() -> list[float]:
        gate = Gate(rpm=120, clock=clock)  # two a second, two at once
        times = []
        for _ in range(7):
            await gate.acquire()
            times.append(clock.now)
        return times

    assert asyncio.run(main()) == pytest.approx([0, 0, 0.5, 1.0, 1.5, 2.0, 2.5])


def test_tpm_reservations_are_given_back(clock: Clock) -> None:
    async def main() -> tuple[float, float]:
        gate = Gate(tpm=6000, clock=clock)  # 100 tokens a second
        await gate.acquire(80)
        await gate.acquire(80)  # waits for 60 more tokens: 0.6 s
        waited = clock.now
        gate.release(80, 10)  # the first used only 10: 70 come back
        gate.release(80, 80)  # the second used all it reserved
        await gate.acquire(50)  # 70 are back: no wait (without the give-back, 0.5 s)
        return waited, clock.now

    assert asyncio.run(main()) == pytest.approx((0.6, 0.6))


def test_request_above_a_seconds_budget_still_runs(clock: Clock) -> None:
    async def main() -> float:
        gate = Gate(tpm=600, clock=clock)  # 10 a second
        await gate.acquire(5)
        await gate.acquire(1000)  # waits for a full bucket, then runs
        return clock.now

    assert asyncio.run(main()) == pytest.approx(0.5)


def test_pause_holds_every_request(clock: Clock) -> None:
    async def main() -> float:
        gate = Gate(clock=clock)
        gate.pause_for(3.0)
        await gate.acquire()
        return clock.now

    assert asyncio.run(main()) == pytest.approx(3.0)
