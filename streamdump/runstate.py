"""A run's records: the settings it runs with, and what it did (the summary.json it writes)."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import _constants as C
from .attempt import AttemptSettings
from .cost import Prices
from .manifest import Finished, figures
from .retry import RetryPolicy
from .schema import AnswerSchema
from .shard import Shard


@dataclass(frozen=True, slots=True)
class RunSettings:
    out_dir: Path
    concurrency: int = C.DEFAULT_CONCURRENCY
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    attempt: AttemptSettings = field(default_factory=AttemptSettings)
    max_failures: int | None = None
    force: bool = False
    ext: str = "txt"
    rpm: float | None = None
    tpm: float | None = None
    expected_output_tokens: int = C.EXPECTED_OUTPUT_TOKENS
    options: dict[str, Any] = field(default_factory=dict)  # echoed into summary.json
    shard: Shard | None = None  # only this shard's items; its own manifest and summary
    results: Path | None = None  # --results-jsonl: Batch API output lines (already tagged with the shard)
    answer_schema: AnswerSchema | None = None  # --json-schema
    invalid_retries: int = C.INVALID_RETRIES
    max_cost: float | None = None  # --max-cost, counted with ``prices``
    prices: Prices | None = None
    http: str = C.DEFAULT_HTTP  # --http: the transport under AsyncOpenAI (see transport)
    processes: int = 1  # --processes: worker processes the items run in (see processes)


@dataclass(slots=True)
class Figures:
    """What summary.json counts over a set of manifest entries: statuses, finish reasons, tokens."""

    statuses: Tally[str] = field(default_factory=Tally)
    finish_reasons: Tally[str] = field(default_factory=Tally)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def count(self, status: str, reasons: tuple[str, ...], prompt: int, completion: int, *, sign: int = 1) -> None:
        """Count one entry (``sign=-1``: take it back, when a later entry replaces it)."""
        self.statuses[status] += sign
        for reason in reasons:
            self.finish_reasons[reason] += sign
        self.prompt_tokens += sign * prompt
        self.completion_tokens += sign * completion

    def add(self, done: Finished, *, sign: int = 1) -> None:
        """Count an earlier run's entry (``sign=-1``: take it back)."""
        self.count(done.status, done.reasons, done.prompt_tokens, done.completion_tokens, sign=sign)

    def merged(self, other: Figures, *, sign: int = 1) -> Figures:
        """A new tally: this one plus (or, ``sign=-1``, minus) ``other``."""

        def combine(mine: Tally[str], theirs: Tally[str]) -> Tally[str]:
            return Tally({key: mine.get(key, 0) + sign * theirs.get(key, 0) for key in mine.keys() | theirs.keys()})

        return Figures(
            combine(self.statuses, other.statuses),
            combine(self.finish_reasons, other.finish_reasons),
            self.prompt_tokens + sign * other.prompt_tokens,
            self.completion_tokens + sign * other.completion_tokens,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "statuses": {k: v for k, v in self.statuses.items() if v},
            "finish_reasons": {k: v for k, v in self.finish_reasons.items() if v},
            "tokens": {"prompt": self.prompt_tokens, "completion": self.completion_tokens},
        }


@dataclass(slots=True)
class RunResult:
    """This run's own figures, and what summary.json needs for the input's as it stands (each item
    by its latest manifest line, whichever run wrote it): the earlier runs' entries the feeder met,
    and those this run's entries replaced."""

    total: int = 0
    statuses: Tally[str] = field(default_factory=Tally)
    finish_reasons: Tally[str] = field(default_factory=Tally)
    skipped: int = 0
    not_started: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    invalid_outputs: int = 0  # failed items whose last answer was not valid against its schema
    cost_usd: float | None = None  # what this run spent, when it had prices to count with
    stopped: str | None = None  # why the run stopped early, if it did
    signal: int | None = None
    started_at: float = 0.0
    ended_at: float = 0.0
    earlier: Mapping[str, Finished] = field(default_factory=dict)  # latest entries before this run
    met: Figures = field(default_factory=Figures)  # earlier entries of the items the feeder handed out
    replaced: Figures = field(default_factory=Figures)  # earlier entries this run's entries replaced
    fed_all: bool = False  # the feeder went through the whole input

    def reached(self, done: Finished | None) -> None:
        """The feeder met an item of the input; ``done`` is its earlier entry, if it has one."""
        if done is not None:
            self.met.add(done)

    def add(self, entry: dict[str, Any]) -> None:
        """Count one item's manifest entry: its status, finish reasons (one per choice) and tokens."""
        status = entry["status"]
        reasons, prompt, completion = figures(entry)
        self.statuses[status] += 1
        for reason in reasons:
            self.finish_reasons[reason] += 1
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        before = self.earlier.get(entry["id"])
        if before is not None:  # this entry is now the item's latest
            self.replaced.add(before)
        if entry.get("cost_usd") is not None:
            self.cost_usd = (self.cost_usd or 0.0) + entry["cost_usd"]
        if status == "failed" and (entry.get("error") or {}).get("type") == "invalid_output":
            self.invalid_outputs += 1

    @property
    def mine(self) -> Figures:
        return Figures(self.statuses, self.finish_reasons, self.prompt_tokens, self.completion_tokens)

    def overall(self, contains: Callable[[str], bool]) -> Figures:
        """Every item of the input by its latest entry.  When the feeder stopped early, the earlier
        entries of the items it never reached are found with ``contains`` (one hash an entry)."""
        base = self.met
        if not self.fed_all:
            base = Figures()
            for item, done in self.earlier.items():
                if contains(item):
                    base.add(done)
        return base.merged(self.replaced, sign=-1).merged(self.mine)

    @property
    def all_ok(self) -> bool:
        done = self.statuses.get("ok", 0) + self.skipped
        return done == self.total and self.stopped is None

    def summary(self, options: dict[str, Any], overall_figures: Figures) -> dict[str, Any]:
        overall = overall_figures.to_json()
        recorded = sum(overall["statuses"].values())
        mine = self.mine.to_json()
        return {
            # Every item of the input (or shard) as it stands: each by its latest manifest line.
            "items": self.total,
            "statuses": overall["statuses"],
            "not_started": max(self.total - recorded, 0),  # no manifest line yet
            "finish_reasons": overall["finish_reasons"],
            "tokens": overall["tokens"],
            "this_run": {
                "statuses": mine["statuses"],
                "skipped_already_done": self.skipped,
                "not_started": self.not_started,
                "finish_reasons": mine["finish_reasons"],
                "tokens": mine["tokens"],
                "invalid_outputs": self.invalid_outputs,
                "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 6),
                "started_at": iso(self.started_at),
                "ended_at": iso(self.ended_at),
                "wall_s": round(self.ended_at - self.started_at, 3),
                "stopped": self.stopped,
            },
            "options": options,
        }


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
