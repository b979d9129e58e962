"""One item's life, top to bottom: attempts driven by the retry policy, the gate, the 429 pause,
and the records of how it ended (its files, its error record, its manifest line).

``Items`` holds what every item of a run shares (settings, gate, writer, results file, tallies);
the pool (``runner``) hands it one job at a time with ``await items.run(job, client)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _constants as C
from .attempt import AttemptOutcome, run_attempt
from .cleanup import run_cleanup
from .errors import AttemptError, CostCapError, DiskError, InvalidOutputError
from .firstcontact import Contact, FirstContact
from .gate import Gate
from .layout import Layout, part_path
from .manifest import build_entry, error_fields, error_record
from .output import OutputWriter
from .partset import empty_fields, leftovers
from .progress import Progress
from .ratelimit import header_pause
from .results import ResultsWriter
from .retry import attempts
from .runstate import RunResult, RunSettings, iso
from .safefs import read_text
from .schema import AnswerCheck, Checks
from .spend import Held, Spend
from .sse import StreamState
from .tokens import counter_for

if TYPE_CHECKING:
    import openai

    from .jobs import Job


def _attempt_record(number: int, started: float, outcome: AttemptOutcome, exc: AttemptError | None) -> dict[str, Any]:
    record: dict[str, Any] = {"attempt": number, "started_at": iso(started), "chars": outcome.received}
    if exc is not None:
        record["error"] = {"type": exc.kind, "message": str(exc), "status": exc.status}
        if exc.code is not None:
            record["error"]["code"] = exc.code
    return record


class Items:
    """What the items of one run share, and the life of each."""

    def __init__(
        self,
        *,
        settings: RunSettings,
        gate: Gate,
        writer: OutputWriter,
        results: ResultsWriter | None,
        progress: Progress,
        result: RunResult,
        stop_run: Callable[[str], None],
        stopped: Callable[[], bool],
        in_flight: Callable[[], int],
    ) -> None:
        self.settings = settings
        self.gate = gate
        self.writer = writer
        self.results = results
        self.progress = progress
        self.result = result
        self.stop_run = stop_run
        self.stopped = stopped
        self.in_flight = in_flight
        self.include_usage = True  # turned off for the run if the server rejects stream_options
        self.first_contact = FirstContact()  # a wrong endpoint stops the run after its first attempts
        self.checks = Checks()  # --json-schema, and the schemas lines carry
        self.spend = Spend(
            settings.prices,
            settings.max_cost,
            expected_output_tokens=settings.expected_output_tokens,
            progress=progress,
        )
        if self.spend.counted and result.cost_usd is None:
            result.cost_usd = 0.0  # summary.json says what this run spent, nothing included

    def layout(self, job: Job) -> Layout:
        return Layout(self.settings.out_dir, job.name, ext=self.settings.ext, n=job.choices)

    async def run(self, job: Job, client: openai.AsyncOpenAI) -> None:
        """Attempt the item until it succeeds, fails for good, or is cancelled; record how it ended."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        layout = self.layout(job)
        history: list[dict[str, Any]] = []
        outcome = AttemptOutcome(StreamState())
        gate = self.gate
        cost = self._reservation(job) if gate.counts_tokens else 0
        include_usage = self.include_usage
        finishing: asyncio.Future[dict[str, Any]] | None = None
        check = self.checks.for_request(job.api, job.params, self.settings.answer_schema)
        invalid_left = self.settings.invalid_retries
        spent = 0.0  # USD, every attempt of this item
        held: Held | None = None  # the attempt in flight, under the spending cap
        started = time.time()

        def on_failure(exc: AttemptError, delay: float, retrying: bool) -> None:
            if exc.status == 429:
                gate.pause_for(delay)  # the whole run, whether or not this item tries again
            if retrying:
                self.progress.retry(
                    f"streamdump: {job.id}: attempt {len(history)} failed ({exc}); retrying in {delay:.1f} s"
                )

        tries = attempts(self.settings.policy, stopped=self.stopped, on_failure=on_failure)
        try:
            async with contextlib.aclosing(tries):
                async for attempt in tries:
                    with attempt:
                        held = await self.spend.admit(job, retry=bool(history))
                        if held is None:  # it cannot start within --max-cost, even alone: not started
                            self.stop_run(self.spend.cap_reached())
                            return
                        await gate.acquire(cost)
                        self.progress.request()
                        outcome = AttemptOutcome(StreamState())
                        started = time.time()
                        try:
                            await run_attempt(
                                client,
                                job,
                                layout,
                                self.writer,
                                self.settings.attempt,
                                outcome,
                                include_usage=include_usage,
                                check=check,
                            )
                        except AttemptError as exc:
                            gate.release(cost, self._used_estimate(job, outcome) if cost else 0)
                            spent += self.spend.charge(held, self.spend.of_attempt(job, outcome, exc))
                            held = None
                            self._slow_down(exc.headers, cost)
                            history.append(_attempt_record(len(history) + 1, started, outcome, exc))
                            if include_usage and job.wire.rejects_option(exc):
                                include_usage = False  # ask once more without it: not a retry
                                attempt.again()
                            elif isinstance(exc, InvalidOutputError) and invalid_left and not self.stopped():
                                invalid_left -= 1  # redone at once, apart from the retry policy's count
                                self.progress.note(f"streamdump: {job.id}: attempt {len(history)}: {exc}; asking again")
                                attempt.again()
                            elif exc.stops_run:
                                self.stop_run(f"{exc} (every request would fail the same way: check the API key)")
                            else:
                                contact = Contact.of(exc, answered=outcome.headers is not None, model=job.model)
                                if (wrong := self.first_contact.failed(contact)) is not None:
                                    self.stop_run(wrong)
                            raise
                        self._slow_down(outcome.headers, cost)
                        self.first_contact.succeeded()
                        if include_usage != self.include_usage:
                            self.include_usage = False
                            self.progress.note(
                                "streamdump: the server rejects stream_options; asking without it from now on "
                                "(usage will be counted with tiktoken)"
                            )
                        history.append(_attempt_record(len(history) + 1, started, outcome, None))
                        # The answer is complete: record it as such even if a signal comes meanwhile.
                        finishing = asyncio.ensure_future(
                            self._succeeded(
                                job, layout, history, outcome, loop.time() - t0, held=held, spent=spent, check=check
                            )
                        )
                        held = None  # charged by _succeeded, with the usage it records
                        entry = await asyncio.shield(finishing)
                        usage = entry["usage"]
                        gate.release(cost, (usage["prompt_tokens"] or 0) + (usage["completion_tokens"] or 0))
        except AttemptError as exc:
            if isinstance(exc, CostCapError):  # the next request cannot start within the cap
                self.stop_run(self.spend.cap_reached())
            await self._failed(job, layout, history, outcome, exc, loop.time() - t0, spent=spent)
        except DiskError as exc:
            # Its files could not be written (a full disk, no file descriptor left): the item still
            # gets its manifest line if the disk takes it, then the run stops (the worker's call).
            if finishing is not None:  # its ok line was being written: that is its record
                raise
            with contextlib.suppress(DiskError):
                failure = AttemptError(str(exc), kind="disk")
                history.append(_attempt_record(len(history) + 1, started, outcome, failure))
                await self._failed(job, layout, history, outcome, failure, loop.time() - t0, spent=spent)
            raise
        except asyncio.CancelledError:
            if finishing is None and held is not None and outcome.files is not None and outcome.files.completed:
                # The signal came while the answer's files were being completed, and they were: ok.
                history.append(_attempt_record(len(history) + 1, started, outcome, None))
                finishing = asyncio.ensure_future(
                    self._succeeded(
                        job, layout, history, outcome, loop.time() - t0, held=held, spent=spent, check=check
                    )
                )
                held = None  # charged by _succeeded
            if finishing is not None:  # completed before the signal: let its ok line be written
                await asyncio.wait({finishing}, timeout=C.CLEANUP_TIMEOUT)
                raise
            if held is not None:
                spent += self.spend.charge(held, self.spend.of_attempt(job, outcome, None))
                held = None
            entry = await self._entry(job, layout, "cancelled", history, outcome, loop.time() - t0, spent=spent)
            await self._record(entry, [])
            raise
        finally:
            if held is not None:  # an attempt ended by something else (a disk error): give back its budget
                self.spend.charge(held, self.spend.of_attempt(job, outcome, None))

    # -- tokens -----------------------------------------------------------------------------
    def _reservation(self, job: Job) -> int:
        """Tokens a request reserves under --tpm: its prompt, plus its output budget (n choices)."""
        return job.prompt_tokens(counter_for(job.model)) + job.output_budget(self.settings.expected_output_tokens)

    @staticmethod
    def _used_estimate(job: Job, outcome: AttemptOutcome) -> int:
        """What a failed attempt may have cost: its prompt and the text it received."""
        return job.prompt_tokens(counter_for(job.model)) + outcome.received // 4

    def _slow_down(self, headers: Mapping[str, str] | None, cost: int) -> None:
        """Hold new requests when the server's rate-limit headers say the window is nearly spent."""
        if headers:
            pause = header_pause(headers, in_flight=self.in_flight(), next_cost=max(cost, 1))
            if pause > 0:
                self.gate.pause_for(pause)

    async def _usage(self, job: Job, outcome: AttemptOutcome) -> dict[str, Any]:
        """The server's counts when it sent any (and they are not all zero for text received), else ours."""
        usage = outcome.state.usage
        if usage is not None and (usage["completion_tokens"] or not outcome.received):
            return {**usage, "source": "server"}
        counter = counter_for(job.model)
        prompt = job.prompt_tokens(counter)
        texts = outcome.files.produced if outcome.files is not None else []
        completion = await asyncio.to_thread(_count_files, counter, texts) if outcome.received else 0
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "source": "estimate" if counter.exact else "estimate-chars",
        }

    # -- records ----------------------------------------------------------------------------
    async def _entry(
        self,
        job: Job,
        layout: Layout,
        status: str,
        history: list[dict[str, Any]],
        outcome: AttemptOutcome,
        duration: float,
        *,
        spent: float = 0.0,
        usage: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if usage is None:
            usage = (
                await self._usage(job, outcome)
                if status in ("ok", "refused")
                else {"prompt_tokens": None, "completion_tokens": None, "source": None}
            )
        entry = build_entry(
            job=job,
            file=layout.answer().name,
            status=status,
            attempts=len(history),
            state=outcome.state,
            usage=usage,
            chars=outcome.chars,
            fields=outcome.files.manifest_fields() if outcome.files is not None else empty_fields(),
            ttft=outcome.ttft,
            duration=duration,
            request_id=_request_id(outcome.headers),
            ended_at=iso(time.time()),
        )
        if self.spend.counted:
            entry["cost_usd"] = round(spent, 8)  # every attempt of the item, retries included
        return entry

    async def _record(self, entry: dict[str, Any], files: list[tuple[Path, bytes | None]]) -> None:
        """Write the side files and the manifest line, also while being cancelled (see ``cleanup``)."""
        writer = self.writer

        recorded = False

        async def commit() -> None:
            nonlocal recorded
            side_error = None
            if files:
                try:
                    await writer.write_files(files)
                except DiskError as exc:  # the manifest line still goes in: it needs no new file
                    side_error = exc
            await writer.record(entry)
            recorded = True
            if self.results is not None:
                try:
                    await self.results.add([entry])
                except DiskError as exc:  # the item itself is recorded: count it, then stop
                    self.stop_run(f"cannot write output: {exc}")
            if side_error is not None:
                raise side_error

        try:
            await run_cleanup(commit())
        finally:
            if recorded:  # counted as the manifest has it, whatever failed beside it
                self.result.add(entry)
                usage = entry["usage"]
                self.progress.item(entry["status"], usage.get("completion_tokens") or 0)

    async def _succeeded(
        self,
        job: Job,
        layout: Layout,
        history: list[dict[str, Any]],
        outcome: AttemptOutcome,
        duration: float,
        *,
        held: Held,
        spent: float,
        check: AnswerCheck | None,
    ) -> dict[str, Any]:
        """The stream completed: ok, or refused when a choice refused (a refusal is not an answer).

        With a ``check``, every answer has passed it (``"valid": true``).  The attempt is charged
        with the usage recorded.
        """
        refused = outcome.files is not None and bool(outcome.files.choices.refused)
        status = "refused" if refused else "ok"
        usage = await self._usage(job, outcome)
        spent += self.spend.charge(held, self.spend.of_usage(usage))
        entry = await self._entry(job, layout, status, history, outcome, duration, spent=spent, usage=usage)
        if check is not None and not refused:
            entry["valid"] = True
        stale = leftovers(layout, outcome.files, succeeded=True)
        if refused:
            self.progress.error(f"streamdump: {job.id}: refused")
        await self._record(entry, [(path, None) for path in [layout.error(), *stale]])
        return entry

    async def _failed(
        self,
        job: Job,
        layout: Layout,
        history: list[dict[str, Any]],
        outcome: AttemptOutcome,
        exc: AttemptError,
        duration: float,
        *,
        spent: float = 0.0,
    ) -> None:
        kept = [path.name for path in outcome.files.kept_parts()] if outcome.files is not None else []
        entry = await self._entry(job, layout, "failed", history, outcome, duration, spent=spent)
        entry["error"] = error_fields(exc)
        record = error_record(
            job=job,
            file=layout.answer().name,
            error=entry["error"],
            attempts=history,
            kept=kept,
            answer_part=part_path(layout.answer()).name,
        )
        files: list[tuple[Path, bytes | None]] = [(layout.error(), record)]
        files += [(path, None) for path in leftovers(layout, outcome.files, succeeded=False)]
        self.progress.error(f"streamdump: {job.id}: failed after {len(history)} attempt(s): {exc}")
        await self._record(entry, files)
        failed = self.result.statuses["failed"]
        limit = self.settings.max_failures
        if limit is not None and failed >= limit:
            items = "item" if failed == 1 else "items"
            self.stop_run(f"{failed} {items} failed (--max-failures {limit})")


def _count_files(counter: Any, paths: list[Path]) -> int:
    return sum(int(counter.text(read_text(path) or "")) for path in paths)


def _request_id(headers: dict[str, str] | None) -> str | None:
    """The server's request id (OpenAI's ``x-request-id``), for support tickets and the results file."""
    found = {key.lower(): value for key, value in (headers or {}).items()}
    return found.get("x-request-id") or found.get("request-id")  # LiteLLM's proxy sends the latter
