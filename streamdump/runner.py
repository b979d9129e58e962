"""Run the jobs: a fixed pool of workers pulling from a bounded queue fed lazily from the input.

Each worker runs one item at a time: attempts with the retry policy, then one manifest line.
The run stops taking new items on a signal, after a 401/403, after ``max_failures`` failed items,
or when the disk fails; items in flight are then closed cleanly and recorded.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter as Tally
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _constants as C
from .attempt import AttemptOutcome, AttemptSettings, run_attempt
from .cleanup import run_cleanup
from .errors import AttemptError, DiskError
from .gate import Gate
from .jobs import Defaults, InputPlan, Job, iter_jobs
from .manifest import Finished, load_finished
from .output import SUMMARY, OutputWriter
from .progress import Progress
from .retry import RetryPolicy, backoff_delay
from .sse import StreamState
from .tokens import counter_for

if TYPE_CHECKING:
    import openai


@dataclass(frozen=True, slots=True)
class RunSettings:
    out_dir: Path
    concurrency: int = C.DEFAULT_CONCURRENCY
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    attempt: AttemptSettings = field(default_factory=AttemptSettings)
    max_failures: int | None = None
    force: bool = False
    ext: str = "txt"
    options: dict[str, Any] = field(default_factory=dict)  # echoed into summary.json


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

    @property
    def all_ok(self) -> bool:
        done = self.statuses.get("ok", 0) + self.skipped
        return done == self.total and self.stopped is None

    def summary(self, options: dict[str, Any]) -> dict[str, Any]:
        return {
            "items": self.total,
            "statuses": dict(self.statuses),
            "skipped_already_done": self.skipped,
            "not_started": self.not_started,
            "finish_reasons": dict(self.finish_reasons),
            "tokens": {"prompt": self.prompt_tokens, "completion": self.completion_tokens},
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "wall_s": round(self.ended_at - self.started_at, 3),
            "stopped": self.stopped,
            "options": options,
        }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def _attempt_record(number: int, started: float, outcome: AttemptOutcome, exc: AttemptError | None) -> dict[str, Any]:
    record: dict[str, Any] = {"attempt": number, "started_at": _iso(started), "chars": outcome.chars}
    if exc is not None:
        record["error"] = {"type": exc.kind, "message": str(exc), "status": exc.status}
    return record


class Runner:
    def __init__(
        self,
        plan: InputPlan,
        defaults: Defaults,
        settings: RunSettings,
        clients: Sequence[openai.AsyncOpenAI],
        progress: Progress,
    ) -> None:
        self.plan = plan
        self.defaults = defaults
        self.settings = settings
        self.clients = clients  # worker i sends through clients[i % len(clients)]
        self.progress = progress
        self.result = RunResult(total=plan.count)
        self.gate = Gate()
        self.stop = asyncio.Event()
        self._busy: set[asyncio.Task[None]] = set()
        self._writer: OutputWriter | None = None

    # -- stopping ---------------------------------------------------------------------------
    def stop_run(self, reason: str) -> None:
        """Take no new items; items in flight finish (or fail) as they are."""
        if not self.stop.is_set():
            self.result.stopped = reason
            self.stop.set()
            self.progress.error(f"streamdump: stopping: {reason}")

    def cancel(self, signum: int, reason: str) -> None:
        """A signal: take no new items and cancel those in flight (they are recorded cancelled)."""
        self.result.signal = signum
        self.stop_run(reason)
        for task in list(self._busy):
            task.cancel()

    # -- the run ----------------------------------------------------------------------------
    async def run(self) -> RunResult:
        result = self.result
        result.started_at = time.time()
        finished: dict[str, Finished] = {}
        answers: set[str] = set()
        if not self.settings.force:
            finished = await asyncio.to_thread(load_finished, self.settings.out_dir)
            answers = await asyncio.to_thread(_answer_files, self.settings.out_dir, self.settings.ext)
        async with OutputWriter(self.settings.out_dir) as writer:
            self._writer = writer
            queue: asyncio.Queue[Job | None] = asyncio.Queue(maxsize=self.settings.concurrency)
            async with asyncio.TaskGroup() as group:
                group.create_task(self._feed(queue, finished, answers), name="streamdump-feeder")
                for index in range(self.settings.concurrency):
                    client = self.clients[index % len(self.clients)]
                    group.create_task(self._worker(queue, client), name=f"streamdump-worker-{index}")
            result.ended_at = time.time()
            result.not_started = result.total - result.skipped - sum(result.statuses.values())
            summary = result.summary(self.settings.options)
            data = (json.dumps(summary, indent=2, ensure_ascii=False) + "\n").encode()
            await asyncio.shield(writer.write_file(self.settings.out_dir / SUMMARY, data))
        return result

    async def _feed(self, queue: asyncio.Queue[Job | None], finished: dict[str, Finished], answers: set[str]) -> None:
        ext = self.settings.ext
        try:
            for index, job in enumerate(iter_jobs(self.plan, self.defaults)):
                if self.stop.is_set():
                    break
                done = finished.get(job.id)
                if (
                    done is not None
                    and done.status == "ok"
                    and done.request_hash == job.request_hash
                    and f"{job.name}.{ext}" in answers
                ):
                    self.result.skipped += 1
                    self.progress.item("ok", 0)
                    if index % 512 == 0:
                        await asyncio.sleep(0)  # let signals and progress through on a long skip
                    continue
                await queue.put(job)
        finally:
            for _ in range(self.settings.concurrency):
                await queue.put(None)

    async def _worker(self, queue: asyncio.Queue[Job | None], client: openai.AsyncOpenAI) -> None:
        while (job := await queue.get()) is not None:
            if self.stop.is_set():
                continue  # counted as not started when the run ends
            task = asyncio.create_task(self._item(job, client), name=f"streamdump-item-{job.id}")
            self._busy.add(task)
            try:
                await asyncio.shield(task)  # a signal cancels the item, not the worker
            except asyncio.CancelledError:
                if not task.done():
                    raise
            except DiskError as exc:
                self.stop_run(f"cannot write output: {exc}")
            finally:
                self._busy.discard(task)

    async def _item(self, job: Job, client: openai.AsyncOpenAI) -> None:
        loop = asyncio.get_running_loop()
        started, t0 = time.time(), loop.time()
        final = self.settings.out_dir / f"{job.name}.{self.settings.ext}"
        attempts: list[dict[str, Any]] = []
        outcome = AttemptOutcome(StreamState())
        policy = self.settings.policy
        try:
            for number in range(1, policy.max_retries + 2):
                await self.gate.wait()
                outcome = AttemptOutcome(StreamState())
                attempt_started = time.time()
                try:
                    await run_attempt(client, job, final, self._writer_(), self.settings.attempt, outcome)
                except AttemptError as exc:
                    attempts.append(_attempt_record(number, attempt_started, outcome, exc))
                    if exc.stops_run:
                        self.stop_run(f"{exc} (every request would fail the same way: check the API key)")
                    if not exc.retryable or number > policy.max_retries or self.stop.is_set():
                        await self._failed(job, final, attempts, outcome, exc, loop.time() - t0)
                        return
                    delay = backoff_delay(number, policy, retry_after=exc.retry_after)
                    if exc.status == 429:
                        self.gate.pause_for(delay)
                    self.progress.note(
                        f"streamdump: {job.id}: attempt {number} failed ({exc}); retrying in {delay:.1f} s"
                    )
                    await asyncio.sleep(delay)
                    continue
                attempts.append(_attempt_record(number, attempt_started, outcome, None))
                await self._succeeded(job, final, attempts, outcome, loop.time() - t0)
                return
        except asyncio.CancelledError:
            entry = await self._entry(job, final, "cancelled", attempts, outcome, loop.time() - t0, started)
            await self._record(entry, [])
            raise

    def _writer_(self) -> OutputWriter:
        assert self._writer is not None
        return self._writer

    async def _usage(self, job: Job, outcome: AttemptOutcome, final: Path) -> dict[str, Any]:
        usage = outcome.state.usage
        if usage and "completion_tokens" in usage:
            return {
                "prompt_tokens": usage.get("prompt_tokens"),
                "completion_tokens": usage["completion_tokens"],
                "source": "server",
            }
        counter = counter_for(job.model)
        prompt = counter.messages(job.messages)
        completion = await asyncio.to_thread(_count_file, counter, final) if outcome.chars else 0
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "source": "estimate" if counter.exact else "estimate-chars",
        }

    async def _entry(
        self,
        job: Job,
        final: Path,
        status: str,
        attempts: list[dict[str, Any]],
        outcome: AttemptOutcome,
        duration: float,
        started: float | None = None,
    ) -> dict[str, Any]:
        usage = (
            await self._usage(job, outcome, final)
            if status == "ok"
            else {"prompt_tokens": None, "completion_tokens": None, "source": None}
        )
        return {
            "id": job.id,
            "line": job.line,
            "file": final.name,
            "status": status,
            "finish_reason": outcome.state.finish_reason,
            "model": outcome.state.model or job.model,
            "attempts": len(attempts),
            "usage": usage,
            "chars": outcome.chars,
            "ttft_s": None if outcome.ttft is None else round(outcome.ttft, 4),
            "duration_s": round(duration, 4),
            "request_hash": job.request_hash,
            "ended_at": _iso(time.time()),
        }

    async def _record(self, entry: dict[str, Any], files: list[tuple[Path, bytes | None]]) -> None:
        """Write the side files and the manifest line, also while being cancelled (see ``cleanup``)."""
        writer = self._writer_()

        async def commit() -> None:
            for path, data in files:
                await writer.write_file(path, data)
            await writer.record(entry)

        await run_cleanup(commit())
        result = self.result
        result.statuses[entry["status"]] += 1
        if entry["finish_reason"]:
            result.finish_reasons[entry["finish_reason"]] += 1
        usage = entry["usage"]
        result.prompt_tokens += usage.get("prompt_tokens") or 0
        result.completion_tokens += usage.get("completion_tokens") or 0
        self.progress.item(entry["status"], usage.get("completion_tokens") or 0)

    async def _succeeded(
        self, job: Job, final: Path, attempts: list[dict[str, Any]], outcome: AttemptOutcome, duration: float
    ) -> None:
        entry = await self._entry(job, final, "ok", attempts, outcome, duration)
        await self._record(entry, [(_error_path(final), None)])

    async def _failed(
        self,
        job: Job,
        final: Path,
        attempts: list[dict[str, Any]],
        outcome: AttemptOutcome,
        exc: AttemptError,
        duration: float,
    ) -> None:
        part = final.with_name(final.name + ".part")
        kept = outcome.chars > 0
        entry = await self._entry(job, final, "failed", attempts, outcome, duration)
        entry["error"] = {"type": exc.kind, "message": str(exc), "status": exc.status}
        record = {
            "id": job.id,
            "file": final.name,
            "error": entry["error"],
            "attempts": attempts,
            "partial_file": part.name if kept else None,
        }
        files: list[tuple[Path, bytes | None]] = [
            (
                _error_path(final),
                (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass"),
            ),
        ]
        if not kept:
            files.append((part, None))
        self.progress.error(f"streamdump: {job.id}: failed after {len(attempts)} attempt(s): {exc}")
        await self._record(entry, files)
        failed = self.result.statuses["failed"]
        if self.settings.max_failures is not None and failed >= self.settings.max_failures:
            self.stop_run(f"{failed} items failed (--max-failures {self.settings.max_failures})")


def _error_path(final: Path) -> Path:
    return final.with_name(final.name.rsplit(".", 1)[0] + ".error.json")


def _count_file(counter: Any, path: Path) -> int:
    return int(counter.text(path.read_text("utf-8", errors="replace")))


def _answer_files(out_dir: Path, ext: str) -> set[str]:
    """Names of the complete answer files in the out-dir (one directory listing, not a stat each)."""
    suffix = "." + ext
    with os.scandir(out_dir) as entries:
        return {entry.name for entry in entries if entry.name.endswith(suffix)}
