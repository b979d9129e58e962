"""Run the jobs: a fixed pool of workers pulling from a bounded queue fed lazily from the input.

Each worker runs one item at a time (its life is in ``item``); the pool only hands them out.
The run stops taking new items on a signal, after a 401/403, after ``max_failures`` failed items,
or when the disk fails; items in flight are then closed cleanly and recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .batch.pending import pending_ids
from .errors import DiskError
from .gate import Gate
from .inputfile import InputPlan, aiter_jobs
from .item import Items
from .jobs import Defaults, Job, LineError
from .manifest import Finished, load_finished
from .output import OutputWriter
from .progress import Progress
from .results import ResultsWriter
from .runstate import RunResult, RunSettings
from .shard import manifest_name, summary_name

if TYPE_CHECKING:
    import openai


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
        self.stop = asyncio.Event()
        self._busy: set[asyncio.Task[None]] = set()
        self._results: ResultsWriter | None = None
        self._items: Items | None = None
        self._in_batches: set[str] = set()  # ids an unfinished Batch API batch holds

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
        answers: set[str] = set()
        shard = self.settings.shard
        # The latest entries earlier runs left (for resume, and, also with --force, for summary.json).
        keep = shard.contains if shard is not None else None
        result.earlier = await asyncio.to_thread(functools.partial(load_finished, self.settings.out_dir, keep=keep))
        if not self.settings.force:
            answers = await asyncio.to_thread(_answer_files, self.settings.out_dir, self.settings.ext)
            self._in_batches = await asyncio.to_thread(pending_ids, self.settings.out_dir)  # see batch/
        async with OutputWriter(self.settings.out_dir, manifest=manifest_name(shard)) as writer:
            if self.settings.results is not None:
                self._results = ResultsWriter(self.settings.results, self.settings.out_dir, writer)
                await self._results.open()
            self._items = self._make_items(
                settings=self.settings,
                gate=Gate(rpm=self.settings.rpm, tpm=self.settings.tpm),
                writer=writer,
                results=self._results,
                progress=self.progress,
                result=result,
                stop_run=self.stop_run,
                stopped=self.stop.is_set,
                in_flight=lambda: len(self._busy),
            )
            queue: asyncio.Queue[Job | None] = asyncio.Queue(maxsize=self.settings.concurrency)
            async with asyncio.TaskGroup() as group:
                group.create_task(self._feed(queue, answers), name="streamdump-feeder")
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
            # Off the loop: after an early stop this looks at every earlier entry (signals still work).
            overall = await asyncio.to_thread(result.overall, self.plan.contains)
            summary = result.summary(self.settings.options, overall)
            data = (json.dumps(summary, indent=2, ensure_ascii=False) + "\n").encode()
            try:
                await asyncio.shield(writer.write_last(self.settings.out_dir / summary_name(shard), data))
            except DiskError as exc:  # every item file is already safe; say so and end cleanly
                self._late_error(f"cannot write the summary: {exc}")
        return result

    async def _feed(self, queue: asyncio.Queue[Job | None], answers: set[str]) -> None:
        skipped: list[Finished] = []  # for the results file, written in batches
        left = 0
        try:
            jobs = aiter_jobs(self.plan, self.defaults)  # read off the loop: a slow disk stalls no stream
            async with contextlib.aclosing(jobs):
                index = -1
                async for job in jobs:
                    index += 1
                    if self.stop.is_set():
                        break
                    done = self.result.earlier.get(job.id)
                    self.result.reached(done)
                    if (
                        not self.settings.force
                        and done is not None
                        and done.status == "ok"
                        and done.request_hash == job.request_hash
                        and all(name in answers for name in self._items_().layout(job).answer_names())
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
                    if job.id in self._in_batches:
                        left += 1  # a batch will bring it (batch collect): not paid for twice; counted not started
                        continue
                    await queue.put(job)
                else:
                    self.result.fed_all = True
            await self._skipped_results(skipped)
            if left:  # said also with --quiet: it is why the run is not all ok
                self.progress.error(
                    f"streamdump: {left} {'item is' if left == 1 else 'items are'} in unfinished batches "
                    "(batches.jsonl): left to `streamdump batch collect` (--force sends them anyway)"
                )
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
            task = asyncio.create_task(self._items_().run(job, client), name=f"streamdump-item-{job.id}")
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

    def _make_items(self, **shared: Any) -> Items:
        """Where the items live: here (``processes.ProcessRunner``: in worker processes)."""
        return Items(**shared)

    def _items_(self) -> Items:
        assert self._items is not None
        return self._items


def _answer_files(out_dir: Path, ext: str) -> set[str]:
    """Names of the complete answer files in the out-dir (one directory listing, not a stat each)."""
    suffix = "." + ext
    with os.scandir(out_dir) as entries:
        # A link planted in a shared out-dir is no answer: the item is redone, and the link replaced.
        return {entry.name for entry in entries if entry.name.endswith(suffix) and not entry.is_symlink()}
