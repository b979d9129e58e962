"""A run's records: the settings it runs with, and what it did (the summary.json it writes)."""

from __future__ import annotations

from collections import Counter as Tally
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import _constants as C
from .attempt import AttemptSettings
from .retry import RetryPolicy
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


@dataclass(slots=True)
class RunResult:
    total: int = 0
    statuses: Tally[str] = field(default_factory=Tally)
    finish_reasons: Tally[str] = field(default_factory=Tally)
    skipped: int = 0
    not_started: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    stopped: str | None = None  # why the run stopped early, if it did
    signal: int | None = None
    started_at: float = 0.0
    ended_at: float = 0.0

    def add(self, entry: dict[str, Any]) -> None:
        """Count one item's manifest entry: its status, finish reasons (one per choice) and tokens."""
        self.statuses[entry["status"]] += 1
        for reason in [c["finish_reason"] for c in entry.get("choices", ())] or [entry["finish_reason"]]:
            if reason:
                self.finish_reasons[reason] += 1
        usage = entry["usage"]
        self.prompt_tokens += usage.get("prompt_tokens") or 0
        self.completion_tokens += usage.get("completion_tokens") or 0

    @property
    def all_ok(self) -> bool:
        done = self.statuses.get("ok", 0) + self.skipped
        return done == self.total and self.stopped is None

    def summary(self, options: dict[str, Any]) -> dict[str, Any]:
        return {
            "items": self.total,
            # Every item of the input as it stands after this run: already-done items count as ok.
            "statuses": dict(self.statuses + Tally({"ok": self.skipped})),
            "skipped_already_done": self.skipped,
            "not_started": self.not_started,
            "finish_reasons": dict(self.finish_reasons),
            "tokens": {"prompt": self.prompt_tokens, "completion": self.completion_tokens},
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "wall_s": round(self.ended_at - self.started_at, 3),
            "stopped": self.stopped,
            "options": options,
        }


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
