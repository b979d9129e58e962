"""Run the jobs: a fixed pool of workers pulling from a bounded queue fed lazily from the input.

Each worker runs one item at a time: attempts with the retry policy, then one manifest line.
The run stops taking new items on a signal, after a 401/403, after ``max_failures`` failed items,
or when the disk fails; items in flight are then closed cleanly and recorded.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _constants as C
from .attempt import AttemptOutcome, run_attempt
from .cleanup import run_cleanup
from .errors import AttemptError, DiskError
from .gate import Gate
from .jobs import Defaults, InputPlan, Job, LineError, iter_jobs
from .layout import Layout, part_path
from .manifest import Finished, load_finished
from .output import OutputWriter
from .partset import empty_fields, leftovers
from .progress import Progress
from .ratelimit import header_pause
from .results import ResultsWriter
from .retry import backoff_delay
from .runstate import RunResult, RunSettings, iso
from .shard import manifest_name, summary_name
from .sse import StreamState
from .tokens import counter_for

if TYPE_CHECKING:
    import openai


def _attempt_record(number: int, started: float, outcome: AttemptOutcome, exc: AttemptError | None) -> dict[str, Any]:
    record: dict[str, Any] = {"attempt": number, "started_at": iso(started), "chars": outcome.received}
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
        self._gate: Gate | None = None
        self.include_usage = True  # turned off for the run if the server rejects stream_options
        self.stop = asyncio.Event()
        self._busy: set[asyncio.Task[None]] = set()
        self._writer: OutputWriter | None = None
        self._results: ResultsWriter | None = None

    # -- stopping ---------------------------------------------------------------------------
    def stop_run(self, reason: str) -> None:
        """Take no new items; items in flight finish (or fail) as they are."""
        if not self.stop.is_set():
            self.result.stopped = reason
            self.stop.set()
            self.progress.error(f"streamdump: stopping: {reason}")

    def _late_error(self, reason: str) -> None:
        """A failure after the items are done (results, summary): said, and the run is not ok."""
        self.progress.error(f"streamdump: {reason}")
        self.result.stopped = self.result.stopped or reason

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
        shard = self.settings.shard
        if not self.settings.force:
            keep = shard.contains if shard is not None else None
            finished = await asyncio.to_thread(functools.partial(load_finished, self.settings.out_dir, keep=keep))
            answers = await asyncio.to_thread(_answer_files, self.settings.out_dir, self.settings.ext)
        self._gate = Gate(rpm=self.settings.rpm, tpm=self.settings.tpm)
        async with OutputWriter(self.settings.out_dir, manifest=manifest_name(shard)) as writer:
            self._writer = writer
            if self.settings.results is not None:
                self._results = ResultsWriter(self.settings.results, self.settings.out_dir, writer)
                await self._results.open()
            queue: asyncio.Queue[Job | None] = asyncio.Queue(maxsize=self.settings.concurrency)
            async with asyncio.TaskGroup() as group:
                group.create_task(self._feed(queue, finished, answers), name="streamdump-feeder")
                for index in range(self.settings.concurrency):
                    client = self.clients[index % len(self.clients)]
                    group.create_task(self._worker(queue, client), name=f"streamdump-worker-{index}")
            if self._results is not None:
                try:
                    await asyncio.shield(self._results.close())
                except DiskError as exc:
                    self._late_error(f"cannot write the results file: {exc}")
            result.ended_at = time.time()
            result.not_started = result.total - result.skipped - sum(result.statuses.values())
            summary = result.summary(self.settings.options)
            data = (json.dumps(summary, indent=2, ensure_ascii=False) + "\n").encode()
            try:
                await asyncio.shield(writer.write_file(self.settings.out_dir / summary_name(shard), data))
            except DiskError as exc:  # every item file is already safe; say so and end cleanly
                self._late_error(f"cannot write the summary: {exc}")
        return result

    async def _feed(self, queue: asyncio.Queue[Job | None], finished: dict[str, Finished], answers: set[str]) -> None:
        skipped: list[Finished] = []  # for the results file, written in batches
        try:
            for index, job in enumerate(iter_jobs(self.plan, self.defaults)):
                if self.stop.is_set():
                    break
                done = finished.get(job.id)
                if (
                    done is not None
                    and done.status == "ok"
                    and done.request_hash == job.request_hash
                    and all(name in answers for name in self._layout(job).answer_names())
                ):
                    self.result.skipped += 1
                    self.progress.item("ok", 0)
                    if self._results is not None:
                        skipped.append(done)
                        if len(skipped) >= 512:
                            await self._skipped_results(skipped)
                    if index % 512 == 0:
                        await asyncio.sleep(0)  # let signals and progress through on a long skip
                    continue
                await queue.put(job)
            await self._skipped_results(skipped)
        except LineError as exc:  # the checked part of the file was rewritten under us
            self.stop_run(f"the prompts file changed during the run ({exc}); nothing more is sent")
        # The end markers go only on this normal path: when the run is torn down, the workers are
        # cancelled and a full queue would block these puts forever.
        for _ in range(self.settings.concurrency):
            await queue.put(None)

    async def _skipped_results(self, skipped: list[Finished]) -> None:
        if self._results is None or not skipped:
            return
        batch = skipped[:]
        skipped.clear()
        try:
            await self._results.add_finished(batch)
        except DiskError as exc:
            self.stop_run(f"cannot write output: {exc}")

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
            except Exception as exc:  # a bug after the stream ended: stop cleanly, keep what is done
                self.progress.error("".join(traceback.format_exception(exc)).rstrip())
                self.stop_run(f"internal error while finishing {job.id!r}: {exc!r}")
            finally:
                self._busy.discard(task)

    def _layout(self, job: Job) -> Layout:
        return Layout(self.settings.out_dir, job.name, ext=self.settings.ext, n=job.choices)

    async def _item(self, job: Job, client: openai.AsyncOpenAI) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        layout = self._layout(job)
        attempts: list[dict[str, Any]] = []
        outcome = AttemptOutcome(StreamState())
        policy = self.settings.policy
        gate = self._gate_()
        cost = self._reservation(job) if gate.counts_tokens else 0
        include_usage = self.include_usage
        retries = 0
        finishing: asyncio.Future[dict[str, Any]] | None = None
        try:
            while True:
                await gate.acquire(cost)
                self.progress.request()
                outcome = AttemptOutcome(StreamState())
                attempt_started = time.time()
                try:
                    await run_attempt(
                        client,
                        job,
                        layout,
                        self._writer_(),
                        self.settings.attempt,
                        outcome,
                        include_usage=include_usage,
                    )
                except AttemptError as exc:
                    gate.release(cost, self._used_estimate(job, outcome) if cost else 0)
                    self._slow_down(exc.headers, cost)
                    attempts.append(_attempt_record(len(attempts) + 1, attempt_started, outcome, exc))
                    if include_usage and _rejects_stream_options(exc):
                        include_usage = False  # ask once more without it; not a retry of the same request
                        continue
                    if exc.stops_run:
                        self.stop_run(f"{exc} (every request would fail the same way: check the API key)")
                    delay = backoff_delay(retries + 1, policy, retry_after=exc.retry_after)
                    if exc.status == 429:
                        gate.pause_for(delay)  # the whole run, whether or not this item tries again
                    if not exc.retryable or retries >= policy.max_retries or self.stop.is_set():
                        await self._failed(job, layout, attempts, outcome, exc, loop.time() - t0)
                        return
                    retries += 1
                    self.progress.note(
                        f"streamdump: {job.id}: attempt {len(attempts)} failed ({exc}); retrying in {delay:.1f} s"
                    )
                    await asyncio.sleep(delay)
                    continue
                self._slow_down(outcome.headers, cost)
                if include_usage != self.include_usage:
                    self.include_usage = False
                    self.progress.note(
                        "streamdump: the server rejects stream_options; asking without it from now on "
                        "(usage will be counted with tiktoken)"
                    )
                attempts.append(_attempt_record(len(attempts) + 1, attempt_started, outcome, None))
                # The answer is complete: record it as such even if a signal comes meanwhile.
                finishing = asyncio.ensure_future(self._succeeded(job, layout, attempts, outcome, loop.time() - t0))
                entry = await asyncio.shield(finishing)
                usage = entry["usage"]
                gate.release(cost, (usage["prompt_tokens"] or 0) + (usage["completion_tokens"] or 0))
                return
        except asyncio.CancelledError:
            if finishing is not None:  # completed before the signal: let its ok line be written
                await asyncio.wait({finishing}, timeout=C.CLEANUP_TIMEOUT)
                raise
            entry = await self._entry(job, layout, "cancelled", attempts, outcome, loop.time() - t0)
            await self._record(entry, [])
            raise

    def _reservation(self, job: Job) -> int:
        """Tokens a request reserves under --tpm: its prompt, plus its output budget (n choices)."""
        return counter_for(job.model).messages(job.messages) + job.output_budget(self.settings.expected_output_tokens)

    @staticmethod
    def _used_estimate(job: Job, outcome: AttemptOutcome) -> int:
        """What a failed attempt may have cost: its prompt and the text it received."""
        return counter_for(job.model).messages(job.messages) + outcome.received // 4

    def _slow_down(self, headers: Mapping[str, str] | None, cost: int) -> None:
        """Hold new requests when the server's rate-limit headers say the window is nearly spent."""
        if headers:
            pause = header_pause(headers, in_flight=len(self._busy), next_cost=max(cost, 1))
            if pause > 0:
                self._gate_().pause_for(pause)

    def _gate_(self) -> Gate:
        assert self._gate is not None
        return self._gate

    def _writer_(self) -> OutputWriter:
        assert self._writer is not None
        return self._writer

    async def _usage(self, job: Job, outcome: AttemptOutcome) -> dict[str, Any]:
        usage = outcome.state.usage
        if usage and "completion_tokens" in usage:
            return {
                "prompt_tokens": usage.get("prompt_tokens"),
                "completion_tokens": usage["completion_tokens"],
                "source": "server",
            }
        counter = counter_for(job.model)
        prompt = counter.messages(job.messages)
        texts = outcome.files.produced if outcome.files is not None else []
        completion = await asyncio.to_thread(_count_files, counter, texts) if outcome.received else 0
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "source": "estimate" if counter.exact else "estimate-chars",
        }

    async def _entry(
        self,
        job: Job,
        layout: Layout,
        status: str,
        attempts: list[dict[str, Any]],
        outcome: AttemptOutcome,
        duration: float,
    ) -> dict[str, Any]:
        usage = (
            await self._usage(job, outcome)
            if status in ("ok", "refused")
            else {"prompt_tokens": None, "completion_tokens": None, "source": None}
        )
        fields = outcome.files.manifest_fields() if outcome.files is not None else empty_fields()
        choices = fields.pop("choices", None)
        entry = {
            "id": job.id,
            "line": job.line,
            "file": layout.answer().name,
            "status": status,
            "finish_reason": outcome.state.finish_reason,
            "model": outcome.state.model or job.model,
            "attempts": len(attempts),
            "usage": usage,
            "chars": outcome.chars,
            **fields,
            "ttft_s": None if outcome.ttft is None else round(outcome.ttft, 4),
            "duration_s": round(duration, 4),
            "request_hash": job.request_hash,
            "request_id": _request_id(outcome.headers),
            "response_id": outcome.state.response_id,
            "ended_at": iso(time.time()),
        }
        if choices is not None:
            entry["choices"] = choices
        return entry

    async def _record(self, entry: dict[str, Any], files: list[tuple[Path, bytes | None]]) -> None:
        """Write the side files and the manifest line, also while being cancelled (see ``cleanup``)."""
        writer = self._writer_()

        async def commit() -> None:
            if files:
                await writer.write_files(files)
            await writer.record(entry)
            if self._results is not None:
                try:
                    await self._results.add([entry])
                except DiskError as exc:  # the item itself is recorded: count it, then stop
                    self.stop_run(f"cannot write output: {exc}")

        await run_cleanup(commit())
        result = self.result
        result.statuses[entry["status"]] += 1
        # With several choices, each choice's finish_reason is counted.
        for reason in [c["finish_reason"] for c in entry.get("choices", ())] or [entry["finish_reason"]]:
            if reason:
                result.finish_reasons[reason] += 1
        usage = entry["usage"]
        result.prompt_tokens += usage.get("prompt_tokens") or 0
        result.completion_tokens += usage.get("completion_tokens") or 0
        self.progress.item(entry["status"], usage.get("completion_tokens") or 0)

    async def _succeeded(
        self, job: Job, layout: Layout, attempts: list[dict[str, Any]], outcome: AttemptOutcome, duration: float
    ) -> dict[str, Any]:
        """The stream completed: ok, or refused when a choice refused (a refusal is not an answer)."""
        refused = outcome.files is not None and bool(outcome.files.choices.refused)
        entry = await self._entry(job, layout, "refused" if refused else "ok", attempts, outcome, duration)
        stale = leftovers(layout, outcome.files, succeeded=True)
        if refused:
            self.progress.error(f"streamdump: {job.id}: refused")
        await self._record(entry, [(path, None) for path in [layout.error(), *stale]])
        return entry

    async def _failed(
        self,
        job: Job,
        layout: Layout,
        attempts: list[dict[str, Any]],
        outcome: AttemptOutcome,
        exc: AttemptError,
        duration: float,
    ) -> None:
        kept = [path.name for path in outcome.files.kept_parts()] if outcome.files is not None else []
        answer_part = part_path(layout.answer()).name
        entry = await self._entry(job, layout, "failed", attempts, outcome, duration)
        entry["error"] = {"type": exc.kind, "message": str(exc), "status": exc.status}
        if isinstance(exc.body, dict):
            entry["error"]["body"] = exc.body  # the server's own error object, for the results file
        record = {
            "id": job.id,
            "file": layout.answer().name,
            "error": entry["error"],
            "attempts": attempts,
            "partial_file": answer_part if answer_part in kept else None,
            "partial_files": kept,
        }
        files: list[tuple[Path, bytes | None]] = [
            (
                layout.error(),
                (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass"),
            ),
        ]
        files += [(path, None) for path in leftovers(layout, outcome.files, succeeded=False)]
        self.progress.error(f"streamdump: {job.id}: failed after {len(attempts)} attempt(s): {exc}")
        await self._record(entry, files)
        failed = self.result.statuses["failed"]
        if self.settings.max_failures is not None and failed >= self.settings.max_failures:
            items = "item" if failed == 1 else "items"
            self.stop_run(f"{failed} {items} failed (--max-failures {self.settings.max_failures})")


def _count_files(counter: Any, paths: list[Path]) -> int:
    return sum(int(counter.text(path.read_text("utf-8", errors="replace"))) for path in paths)


def _request_id(headers: dict[str, str] | None) -> str | None:
    """The server's request id (OpenAI's ``x-request-id``), for support tickets and the results file."""
    for key, value in (headers or {}).items():
        if key.lower() == "x-request-id":
            return value
    return None


def _answer_files(out_dir: Path, ext: str) -> set[str]:
    """Names of the complete answer files in the out-dir (one directory listing, not a stat each)."""
    suffix = "." + ext
    with os.scandir(out_dir) as entries:
        return {entry.name for entry in entries if entry.name.endswith(suffix)}


def _rejects_stream_options(exc: AttemptError) -> bool:
    """A 400 that names stream_options: the server does not know the field (older vLLM, Azure...)."""
    message = str(exc)
    return exc.status == 400 and ("stream_options" in message or "include_usage" in message)
