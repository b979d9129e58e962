"""--dry-run: check the input, count prompt tokens, project output tokens, price the job.

One pass over the input; nothing is sent and nothing is written to the out-dir.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .cost import usd
from .inputfile import scan
from .jobs import Defaults, Job
from .shard import Shard
from .tokens import counter_for


@dataclass(slots=True)
class ModelTotals:
    items: int = 0
    prompt_tokens: int = 0
    max_output_tokens: int = 0
    without_max: int = 0  # items that set no max_tokens: --expected-output-tokens was assumed
    exact: bool = True  # False when the model has no known tokenizer (an estimate by characters)


@dataclass(slots=True)
class DryRunReport:
    by_model: dict[str, ModelTotals] = field(default_factory=dict)

    @property
    def items(self) -> int:
        return sum(t.items for t in self.by_model.values())

    @property
    def prompt_tokens(self) -> int:
        return sum(t.prompt_tokens for t in self.by_model.values())

    @property
    def max_output_tokens(self) -> int:
        return sum(t.max_output_tokens for t in self.by_model.values())


def dry_run(path: str, defaults: Defaults, *, expected_output_tokens: int, shard: Shard | None = None) -> DryRunReport:
    """Count the input (only the shard's items, with a shard). Raises InputError like a run would."""
    report = DryRunReport()

    def count(job: Job) -> None:
        totals = report.by_model.get(job.model)
        if totals is None:
            totals = report.by_model[job.model] = ModelTotals()
        counter = counter_for(job.model)
        totals.exact = counter.exact
        totals.items += 1
        totals.prompt_tokens += job.prompt_tokens(counter)
        if job.output_limit is None:
            totals.without_max += 1
        totals.max_output_tokens += job.output_budget(expected_output_tokens)

    scan(path, defaults, on_job=count, shard=shard).discard()
    return report


def _items(count: int) -> str:
    return f"{count:,} item" if count == 1 else f"{count:,} items"


BATCH_DISCOUNT = 0.5  # the OpenAI Batch API's price: half of a live request's


def _cost_lines(
    report: DryRunReport, price_in: float | None, price_out: float | None, *, factor: float = 1.0
) -> list[str]:
    """The cost range; with one price only, only what that price covers (never a price of 0 assumed)."""
    cost_in = None if price_in is None else report.prompt_tokens * price_in / 1e6 * factor
    cost_out = None if price_out is None else report.max_output_tokens * price_out / 1e6 * factor
    if cost_in is not None and cost_out is not None:
        return [
            f"cost: {usd(cost_in)} to {usd(cost_in + cost_out)} (prompts alone, up to every response at its max output)"
        ]
    if cost_in is not None:
        return [f"prompt cost: {usd(cost_in)} (give --price-out to price the output too)"]
    if cost_out is not None:
        return [f"output cost: up to {usd(cost_out)} (give --price-in to price the prompts too)"]
    return []


def _minutes(minutes: float) -> str:
    if minutes < 1:
        return f"{minutes * 60:.0f} s"
    if minutes < 120:
        return f"{minutes:.1f} min"
    return f"{minutes / 60:.1f} h"


def format_report(
    report: DryRunReport,
    *,
    price_in: float | None = None,
    price_out: float | None = None,
    rpm: float | None = None,
    tpm: float | None = None,
    batch: bool = False,
) -> str:
    """The dry run's table, cost range and time floor, as printed on stdout (``batch``: at the Batch
    API's price)."""
    rows = [("model", "items", "prompt tokens", "max output tokens")]
    for model, totals in sorted(report.by_model.items()):
        mark = "" if totals.exact else " (est.)"
        rows.append((model + mark, f"{totals.items:,}", f"{totals.prompt_tokens:,}", f"{totals.max_output_tokens:,}"))
    rows.append(("total", f"{report.items:,}", f"{report.prompt_tokens:,}", f"{report.max_output_tokens:,}"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.insert(len(lines) - 1, "  ".join("-" * w for w in widths))
    without = sum(t.without_max for t in report.by_model.values())
    if without:
        lines.append(f"{_items(without)} set no max_tokens: counted at --expected-output-tokens each.")
    if any(not t.exact for t in report.by_model.values()):
        lines.append("(est.): no tokenizer is known for that model offline; about 4 characters a token.")
    lines += _cost_lines(report, price_in, price_out, factor=BATCH_DISCOUNT if batch else 1.0)
    if batch and (price_in is not None or price_out is not None):
        lines.append("priced at the Batch API's discount: half of the prices given (streamdump batch submit)")
    if rpm:
        lines.append(f"at --rpm {rpm:g}: at least {_minutes(report.items / rpm)}")
    if tpm:
        lines.append(f"at --tpm {tpm:g}: at least {_minutes(report.prompt_tokens / tpm)} (prompt tokens alone)")
    lines.append("dry run: nothing was sent.")
    return "\n".join(lines)
