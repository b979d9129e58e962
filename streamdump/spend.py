"""What a run spends, attempt by attempt: each attempt priced, and held within --max-cost.

The arithmetic is ``cost``'s; this module knows jobs and attempts.  An attempt costs what the
server's usage says when it sent any; otherwise an estimate: its prompt as counted and the text
it received (about four characters a token).  An attempt the server answered with an HTTP error
before any stream opened costs nothing (such requests are not billed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .cost import Budget, Prices, Reservation, usd
from .errors import AttemptError, CostCapError
from .tokens import counter_for

if TYPE_CHECKING:
    from .attempt import AttemptOutcome
    from .jobs import Job
    from .progress import Progress


@dataclass(frozen=True, slots=True)
class Held:
    """An attempt allowed to start; ``reservation`` is its worst case under the cap, if there is one."""

    reservation: Reservation | None = None


class Spend:
    """A run's prices (``None``: nothing is counted) and its cap (``None``: no cap)."""

    def __init__(self, prices: Prices | None, cap: float | None, *, expected_output_tokens: int, progress: Progress):
        self.prices = prices
        self.budget = Budget(cap) if prices is not None and cap is not None else None
        self.expected_output_tokens = expected_output_tokens
        self.progress = progress

    @property
    def counted(self) -> bool:
        return self.prices is not None

    def cap_reached(self) -> str:
        """Why the run stops: what it spent of its cap."""
        assert self.budget is not None
        return f"spending cap reached ({usd(self.budget.spent)} of {usd(self.budget.cap)})"

    async def admit(self, job: Job, *, retry: bool) -> Held | None:
        """Wait until the attempt fits within the cap. ``None``: a first attempt that never will (the
        run stops, the item is not started). A retry that never will raises CostCapError."""
        if self.budget is None or self.prices is None:
            return Held()
        worst = self.prices.worst_case(
            prompt_tokens=job.prompt_tokens(counter_for(job.model)),
            output_tokens=job.output_budget(self.expected_output_tokens),
        )
        reservation = await self.budget.admit(worst)
        if reservation is not None:
            return Held(reservation)
        if retry:
            raise CostCapError(
                f"a retry would not fit within --max-cost {usd(self.budget.cap)} "
                f"({usd(self.budget.spent)} spent, up to {usd(worst)} for this request)"
            )
        return None

    def charge(self, held: Held, cost: float) -> float:
        """The attempt ended, having cost ``cost``: count it, give back the rest of its worst case."""
        if self.budget is not None and held.reservation is not None:
            self.budget.release(held.reservation, cost)
        if self.prices is not None:
            self.progress.spend(cost)
        return cost

    def of_usage(self, usage: dict[str, Any]) -> float:
        return 0.0 if self.prices is None else self.prices.of_usage(usage)

    def of_attempt(self, job: Job, outcome: AttemptOutcome, exc: AttemptError | None) -> float:
        """What an attempt that did not succeed (failed, or cancelled) cost, as far as it can be known."""
        if self.prices is None:
            return 0.0
        usage = outcome.state.usage
        if usage is not None and usage.get("completion_tokens"):
            return self.prices.of_usage(usage)
        if exc is not None and exc.status is not None and outcome.files is None:
            return 0.0  # answered with an HTTP error: the request was refused, not run
        prompt = job.prompt_tokens(counter_for(job.model))
        return self.prices.cost(prompt_tokens=prompt, completion_tokens=outcome.received // 4)
