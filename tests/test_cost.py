"""The spending cap's arithmetic: prices, worst cases, and the budget requests start within."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streamdump.cost import Budget, Prices, Reservation, decide, usd


@pytest.mark.parametrize(
    ("prices", "prompt", "completion", "cached", "cost"),
    [
        (Prices(1.0, 2.0), 1_000_000, 0, 0, 1.0),
        (Prices(1.0, 2.0), 0, 1_000_000, 0, 2.0),
        (Prices(0.15, 0.60), 1000, 500, 0, 0.00045),
        (Prices(1.0, 2.0), 1000, 0, 400, 0.001),  # cached tokens cost the input price by default
        (Prices(1.0, 2.0, cached_input=0.5), 1000, 0, 400, 0.0008),  # 600 at 1.0 and 400 at 0.5
        (Prices(1.0, 2.0, cached_input=0.0), 1000, 0, 1000, 0.0),
        (Prices(1.0, 2.0, cached_input=0.5), 100, 0, 400, 0.00005),  # never more cached than prompt
        (Prices(1.0, 2.0, cached_input=0.5), 100, 0, -5, 0.0001),
        (Prices(0.0, 0.0), 10**9, 10**9, 0, 0.0),
    ],
)
def test_prices(prices: Prices, prompt: int, completion: int, cached: int, cost: float) -> None:
    assert prices.cost(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached) == pytest.approx(cost)


@pytest.mark.parametrize(
    ("prompt", "output", "worst"),
    [
        (1000, 0, 1100 * 1.0 / 1e6),  # the prompt counted with a 10% margin
        (1000, 500, (1100 * 1.0 + 500 * 2.0) / 1e6),
        (7, 0, 8 / 1e6),  # 7.7 rounds up
        (0, 3000, 3000 * 2.0 / 1e6),  # n x the output limit is the caller's: here 3 x 1000
    ],
)
def test_worst_case(prompt: int, output: int, worst: float) -> None:
    assert Prices(1.0, 2.0).worst_case(prompt_tokens=prompt, output_tokens=output) == pytest.approx(worst)


@pytest.mark.parametrize(
    ("usage", "cost"),
    [
        ({"prompt_tokens": 1000, "completion_tokens": 500, "source": "server"}, (1000 + 1000) / 1e6),
        ({"prompt_tokens": 1000, "completion_tokens": 500, "cached_tokens": 1000}, (500 + 1000) / 1e6),
        ({"prompt_tokens": None, "completion_tokens": 500}, 1000 / 1e6),
        ({"prompt_tokens": True, "completion_tokens": "500"}, 0.0),
        ({}, 0.0),
    ],
)
def test_cost_of_a_usage_record(usage: dict[str, Any], cost: float) -> None:
    assert Prices(1.0, 2.0, cached_input=0.5).of_usage(usage) == pytest.approx(cost)


@pytest.mark.parametrize(
    ("amount", "shown"),
    [(0.0, "$0.0000"), (0.00045, "$0.0004"), (0.5, "$0.5000"), (1.0, "$1.00"), (1234.567, "$1,234.57")],
)
def test_usd(amount: float, shown: str) -> None:
    assert usd(amount) == shown


@pytest.mark.parametrize(
    ("spent", "held", "in_flight", "worst", "decision"),
    [
        (0.0, 0.0, 0, 1.0, "go"),  # exactly the cap fits
        (0.0, 0.0, 0, 1.01, "never"),  # bigger than the cap, nothing to wait for
        (0.5, 0.0, 0, 0.5, "go"),
        (0.5, 0.0, 0, 0.6, "never"),
        (0.2, 0.5, 2, 0.3, "go"),
        (0.2, 0.5, 2, 0.4, "wait"),  # those in flight may give some back
        (0.1 + 0.2, 0.0, 0, 0.7, "go"),  # float sums that meet the cap exactly
        (1.0, 0.0, 0, 0.0, "go"),  # a free request still runs at the cap
    ],
)
def test_decide(spent: float, held: float, in_flight: int, worst: float, decision: str) -> None:
    assert decide(cap=1.0, spent=spent, held=held, in_flight=in_flight, worst=worst) == decision


def test_budget_holds_worst_cases_and_spends_actual_costs() -> None:
    budget = Budget(1.0)
    first = budget.try_admit(0.4)
    second = budget.try_admit(0.4)
    assert isinstance(first, Reservation) and isinstance(second, Reservation)
    assert budget.try_admit(0.4) == "wait"
    budget.release(first, 0.1)  # it cost less than its worst case: the rest comes back
    assert (budget.spent, budget.held, budget.in_flight) == (pytest.approx(0.1), pytest.approx(0.4), 1)
    third = budget.try_admit(0.4)
    assert isinstance(third, Reservation)
    budget.release(second, 0.4)
    budget.release(third, 0.4)
    assert (budget.spent, budget.held, budget.in_flight) == (pytest.approx(0.9), 0.0, 0)
    assert budget.try_admit(0.2) == "never"
    assert budget.exhausted
    assert budget.try_admit(0.0) == "never"  # the run stops: nothing more starts


def test_admit_waits_for_requests_in_flight_to_give_back() -> None:
    async def scenario() -> list[str]:
        budget = Budget(1.0)
        events: list[str] = []
        held = await budget.admit(0.8)
        assert held is not None

        async def second() -> None:
            reservation = await budget.admit(0.5)
            events.append("second started" if reservation else "second refused")

        waiter = asyncio.create_task(second())
        await asyncio.sleep(0)
        events.append("first ends")
        budget.release(held, 0.3)
        await waiter
        return events

    assert asyncio.run(scenario()) == ["first ends", "second started"]


def test_admit_gives_up_when_what_comes_back_is_not_enough() -> None:
    async def scenario() -> tuple[Reservation | None, Reservation | None, bool]:
        budget = Budget(1.0)
        held = await budget.admit(0.8)
        assert held is not None
        waiter = asyncio.create_task(budget.admit(0.5))
        await asyncio.sleep(0)
        budget.release(held, 0.8)  # it spent its worst case: 0.2 left, nothing in flight
        refused = await waiter
        return held, refused, budget.exhausted

    _, refused, exhausted = asyncio.run(scenario())
    assert refused is None
    assert exhausted


def test_every_waiter_gives_up_once_the_budget_is_exhausted() -> None:
    async def scenario() -> list[Reservation | None]:
        budget = Budget(1.0)
        held = await budget.admit(0.6)
        assert held is not None
        waiters = [asyncio.create_task(budget.admit(0.5)) for _ in range(3)]
        await asyncio.sleep(0)
        budget.release(held, 0.6)
        return list(await asyncio.gather(*waiters))

    assert asyncio.run(scenario()) == [None, None, None]
