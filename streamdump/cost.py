"""What a run spends: prices, a request's worst case, and the budget requests start within (--max-cost).

Pure apart from ``Budget.admit`` waiting on the event loop for budget to come back (it waits on
releases, never on time).

The rule: a request starts only while what has been spent, plus the worst case of every request
in flight, plus its own worst case stays within the cap.  A request's worst case is its prompt
tokens as counted, with a margin (``COST_PROMPT_MARGIN``: the server may count a few more), plus
its output limit for each of its choices, priced.  What an attempt cost is given back when it
ends: the server's usage when it sent any, else an estimate.  So while every request sets an
output limit, the cap holds unless the server bills more prompt tokens than counted plus the
margin; a request without one reserves ``--expected-output-tokens`` and may write past it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from . import _constants as C

PER = 1_000_000  # prices are in USD per million tokens
_SLACK = 1e-12  # USD: sums of floats that should meet the cap exactly


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per million tokens. Cached prompt tokens cost ``cached_input`` (by default ``input``)."""

    input: float
    output: float
    cached_input: float | None = None

    def cost(self, *, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
        cached = min(max(cached_tokens, 0), prompt_tokens)
        cached_price = self.input if self.cached_input is None else self.cached_input
        return ((prompt_tokens - cached) * self.input + cached * cached_price + completion_tokens * self.output) / PER

    def worst_case(self, *, prompt_tokens: int, output_tokens: int) -> float:
        """A request's most: its prompt with the margin, and every choice at its output limit."""
        margin = math.ceil(prompt_tokens * (1 + C.COST_PROMPT_MARGIN))
        return self.cost(prompt_tokens=margin, completion_tokens=output_tokens)

    def of_usage(self, usage: Mapping[str, Any]) -> float:
        """The cost of a usage record (``prompt_tokens``, ``completion_tokens``, ``cached_tokens``)."""
        return self.cost(
            prompt_tokens=_count(usage.get("prompt_tokens")),
            completion_tokens=_count(usage.get("completion_tokens")),
            cached_tokens=_count(usage.get("cached_tokens")),
        )


def run_prices(
    max_cost: float | None, *, price_in: float | None, price_out: float | None, price_cached_in: float | None
) -> Prices | None:
    """The prices a run counts its spend with: both given, or none. Raises ValueError for a cap without them."""
    if price_in is None or price_out is None:
        if max_cost is not None:
            raise ValueError("--max-cost needs --price-in and --price-out (USD per million tokens) to count the spend")
        return None
    return Prices(price_in, price_out, price_cached_in)


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usd(amount: float) -> str:
    """Dollars as people read them: cents from $1 up, four decimals below."""
    return f"${amount:,.2f}" if amount >= 1 else f"${amount:.4f}"


Decision = Literal["go", "wait", "never"]


def decide(*, cap: float, spent: float, held: float, in_flight: int, worst: float) -> Decision:
    """May a request of ``worst`` start now? ``wait``: not now, but requests in flight may give back."""
    if spent + held + worst <= cap + _SLACK:
        return "go"
    return "wait" if in_flight else "never"


@dataclass(frozen=True, slots=True)
class Reservation:
    worst: float


class Budget:
    """The run's spend under ``cap`` USD: reserve a request's worst case, release its actual cost.

    Once a request cannot start even with nothing in flight, the budget is exhausted: every
    later ``admit`` says no at once (the run stops; the items left are not started).
    """

    def __init__(self, cap: float) -> None:
        self.cap = cap
        self.spent = 0.0
        self.held = 0.0
        self.in_flight = 0
        self.exhausted = False
        self._released = asyncio.Event()

    def try_admit(self, worst: float) -> Reservation | Decision:
        """A reservation when ``worst`` fits now; otherwise ``wait`` or ``never``."""
        if self.exhausted:
            return "never"
        decision = decide(cap=self.cap, spent=self.spent, held=self.held, in_flight=self.in_flight, worst=worst)
        if decision == "go":
            self.held += worst
            self.in_flight += 1
            return Reservation(worst)
        if decision == "never":
            self.exhausted = True
            self._wake()  # those waiting cannot start either
        return decision

    async def admit(self, worst: float) -> Reservation | None:
        """Wait until ``worst`` fits; ``None`` when it never will (nothing in flight to give back)."""
        while True:
            outcome = self.try_admit(worst)
            if isinstance(outcome, Reservation):
                return outcome
            if outcome == "never":
                return None
            released = self._released
            await released.wait()

    def release(self, reservation: Reservation, actual: float) -> None:
        """A request ended, having cost ``actual``: its reservation comes back, its cost is spent."""
        self.in_flight -= 1
        self.held = max(self.held - reservation.worst, 0.0) if self.in_flight else 0.0  # no float drift
        self.spent += actual
        self._wake()

    def _wake(self) -> None:
        self._released.set()
        self._released = asyncio.Event()
