"""`streamdump status DIR`: what an out-dir holds, read from its manifests (all of them).

With a prompts file it also says what is still to do: items never run, items not ok, and items
whose request changed since they were done (compared by request hash, with the model, system
message and parameters of the last run, read from summary.json).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _constants as C
from .cost import Prices, usd
from .errors import SetupError
from .inputfile import iter_jobs, read_ids, scan
from .jobs import Defaults, defaults_from_options
from .manifest import iter_entries, latest_entries, manifest_paths
from .output import SUMMARY

SHOWN = 20  # ids listed per group in the text output (--json lists all)


@dataclass(slots=True)
class PromptsCheck:
    file: str
    total: int = 0
    done: int = 0
    missing: list[str] = field(default_factory=list)  # never finished in this dir
    not_ok: list[str] = field(default_factory=list)  # latest entry failed or cancelled
    changed: list[str] = field(default_factory=list)  # done, but the request is not the same any more
    changes_checked: bool = True  # False when no run of this file is recorded here to compare with

    @property
    def to_do(self) -> int:
        return len(self.missing) + len(self.not_ok) + len(self.changed)


@dataclass(slots=True)
class StatusReport:
    out_dir: str
    manifests: list[str]
    statuses: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    prompts: PromptsCheck | None = None
    cost_usd: float | None = None  # what every run spent: the runs' own count, or priced by status's prices
    cost_priced: bool = False  # True when priced here (--price-in/--price-out), not the runs' own count

    @property
    def invalid_outputs(self) -> int:
        """Failed items whose last answer was not valid against its schema (counted apart)."""
        return sum(1 for f in self.failed if (f.get("error") or {}).get("type") == "invalid_output")

    @property
    def complete(self) -> bool:
        not_ok = sum(n for status, n in self.statuses.items() if status != "ok")
        return not_ok == 0 and (self.prompts is None or self.prompts.to_do == 0)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "out_dir": self.out_dir,
            "manifests": self.manifests,
            "items": sum(self.statuses.values()),
            "statuses": dict(self.statuses),
            "tokens": {"prompt": self.prompt_tokens, "completion": self.completion_tokens},
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 6),
            "invalid_outputs": self.invalid_outputs,
            "failed": self.failed,
            "complete": self.complete,
        }
        if self.prompts is not None:
            p = self.prompts
            data["prompts"] = {
                "changes_checked": p.changes_checked,
                "file": p.file,
                "total": p.total,
                "done": p.done,
                "to_do": p.to_do,
                "missing": p.missing,
                "not_ok": p.not_ok,
                "changed": p.changed,
            }
        return data


def _brief(entry: dict[str, Any], _path: Path, _offset: int) -> dict[str, Any]:
    """What status keeps of an item's latest entry (not the whole line: memory grows with items)."""
    brief = {key: entry.get(key) for key in ("status", "file", "request_hash")}
    if entry.get("status") == "failed":
        brief["error"] = entry.get("error")
    return brief


def _same_file(a: str, b: str) -> bool:
    return a != "-" and b != "-" and (a == b or os.path.realpath(a) == os.path.realpath(b))


def _run_defaults(out_dir: Path, prompts: str) -> Defaults | None:
    """The defaults of a run of this same prompts file into this dir (from its summary), if any.

    Request hashes only compare under the model, system message, parameters and templates the run
    used; a summary of a run of another file says nothing about this one.
    """
    for path in [out_dir / SUMMARY, *sorted(out_dir.glob("summary.*.json"))]:
        try:
            options = json.loads(path.read_text())["options"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not _same_file(str(options.get("prompts")), prompts):
            continue
        try:
            return defaults_from_options(options, default_model=C.DEFAULT_MODEL)
        except (KeyError, TypeError, ValueError, SetupError):
            continue
    return None


def collect_status(out_dir: Path, prompts: str | None = None, *, prices: Prices | None = None) -> StatusReport:
    """Read every manifest in ``out_dir``. Raises SetupError for a dir with none, InputError for bad prompts.

    The spend is priced with ``prices`` when given; otherwise it is what the runs counted (their
    lines' ``cost_usd``), when they counted any.
    """
    paths = manifest_paths(out_dir)
    if not paths:
        raise SetupError(f"{out_dir}: no manifest here (is it a streamdump out-dir?)")
    report = StatusReport(str(out_dir), [p.name for p in paths])
    for path in paths:  # tokens and spend: every line (what all runs spent)
        for entry in iter_entries(path):
            usage = entry.get("usage") or {}
            report.prompt_tokens += usage.get("prompt_tokens") or 0
            report.completion_tokens += usage.get("completion_tokens") or 0
            if prices is not None:
                report.cost_usd = (report.cost_usd or 0.0) + prices.of_usage(usage)
            elif isinstance(entry.get("cost_usd"), (int, float)):
                report.cost_usd = (report.cost_usd or 0.0) + entry["cost_usd"]
    report.cost_priced = prices is not None
    latest = latest_entries(out_dir, _brief)  # the same rule resume uses
    for item_id, entry in latest.items():
        status = str(entry.get("status"))
        report.statuses[status] += 1
        if status == "failed":
            report.failed.append({"id": item_id, "file": entry.get("file"), "error": entry.get("error")})
    if prompts is not None:
        report.prompts = _check_prompts(out_dir, prompts, latest)
    return report


def _check_prompts(out_dir: Path, prompts: str, latest: dict[str, dict[str, Any]]) -> PromptsCheck:
    defaults = _run_defaults(out_dir, prompts)
    if defaults is None:
        # No run of this file here to take the request's shape from: compare by id alone.
        check = PromptsCheck(prompts, changes_checked=False)
        for item_id in read_ids(prompts):
            check.total += 1
            _classify(check, out_dir, item_id, latest.get(item_id), None)
        return check
    plan = scan(prompts, defaults)
    check = PromptsCheck(plan.display, total=plan.count)
    try:
        for job in iter_jobs(plan, defaults):
            _classify(check, out_dir, job.id, latest.get(job.id), job.request_hash)
    finally:
        plan.discard()
    return check


def _classify(
    check: PromptsCheck, out_dir: Path, item_id: str, entry: dict[str, Any] | None, digest: str | None
) -> None:
    if entry is None:
        check.missing.append(item_id)
    elif entry.get("status") != "ok" or not (out_dir / str(entry.get("file"))).exists():
        check.not_ok.append(item_id)
    elif digest is not None and entry.get("request_hash") != digest:
        check.changed.append(item_id)
    else:
        check.done += 1


def _ids(label: str, ids: list[str]) -> list[str]:
    if not ids:
        return []
    shown = ", ".join(ids[:SHOWN]) + (f", ... ({len(ids) - SHOWN} more)" if len(ids) > SHOWN else "")
    return [f"  {label} ({len(ids)}): {shown}"]


def format_status(report: StatusReport) -> str:
    counts = ", ".join(
        f"{n} {status}"
        + (f" ({report.invalid_outputs} invalid output)" if status == "failed" and report.invalid_outputs else "")
        for status, n in sorted(report.statuses.items())
    )
    lines = [
        f"{report.out_dir}: {sum(report.statuses.values())} items: {counts or 'nothing yet'}",
        f"tokens: {report.prompt_tokens} prompt + {report.completion_tokens} completion (all runs)",
    ]
    if report.cost_usd is not None:
        how = "at the prices given" if report.cost_priced else "as the runs counted it"
        lines.append(f"spent: {usd(report.cost_usd)} (all runs, {how})")
    for failure in report.failed[:SHOWN]:
        error = failure.get("error") or {}
        kind = " (invalid output)" if error.get("type") == "invalid_output" else ""
        lines.append(f"  failed {failure['id']}{kind}: {error.get('message', 'unknown error')}")
    if len(report.failed) > SHOWN:
        lines.append(f"  ... and {len(report.failed) - SHOWN} more failed (--json lists all)")
    if report.prompts is not None:
        p = report.prompts
        lines.append(f"against {p.file}: {p.done} of {p.total} done, {p.to_do} to do")
        if not p.changes_checked:
            lines.append(
                "  (compared by id only: the last run here was of another file, so changed requests are not seen)"
            )
        lines += _ids("never run", p.missing) + _ids("not ok", p.not_ok) + _ids("changed since", p.changed)
    if report.complete:
        lines.append("complete.")
    else:
        lines.append(
            "not complete: run the same command again to redo what is not ok "
            "(an item refused with a 4xx fails again until its request changes)."
        )
    return "\n".join(lines)
