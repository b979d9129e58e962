"""``--processes N``: one run (or one shard) across N worker processes, to use every core.

The run's own process keeps everything that is one per run, and the workers only stream::

    run process (the parent)                          worker process k (of N)
    ------------------------                          -----------------------
    checks the input, holds the out-dir's lock        ignores SIGINT and SIGTERM (the parent
    reads the manifest once (resume)                  relays one stop), dies with the parent
    feeds the jobs, -c in flight in all        job -> runs the item: attempts, retries, the
    sends each job to worker part_of(id, N)  <- done  item's files, its error record
    appends the manifest, the results file,           (Items, with a gate of --rpm/N, --tpm/N)
    counts, shows progress, writes summary.json
    relays 429 pauses, stops, the stream_options fallback, a signal's cancel, to every worker

An item goes to the worker ``part_of(id, N)``: bytes 8-16 of the id's sha256, where a shard uses
bytes 0-8, so the items of one shard spread over the workers too.  The manifest line of an item
travels back with the worker's "done" and is appended by the parent: one process appends to each
manifest.  A run resumes after any N, or none: what is done is read from the manifest as always.

Messages (``channel``), parent to worker: ``job``, ``pause``, ``stop``, ``no_usage``, ``cancel``,
``end``; worker to parent: ``done``, ``pause``, ``stop``, ``no_usage``, ``request``, ``say``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _constants as C
from .channel import Channel, Message, encode
from .errors import DiskError
from .item import Items
from .runner import Runner

if TYPE_CHECKING:
    import openai

    from .inputfile import InputPlan
    from .jobs import Defaults, Job
    from .progress import Progress
    from .runstate import RunSettings


# -- how many, and which ---------------------------------------------------------------------
def part_of(item_id: str, n: int) -> int:
    """The worker (0 .. n-1) that takes an item: another part of the id's hash than its shard's."""
    digest = hashlib.sha256(item_id.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[8:16], "big") % n


def parse_processes(spec: str, *, cgroup: Path = Path("/sys/fs/cgroup"), own: Path = Path("/proc/self/cgroup")) -> int:
    """``N`` (at least 1) or ``auto``: the CPUs this process may use. Raises ValueError."""
    if spec.strip().lower() == "auto":
        return available_cpus(cgroup=cgroup, own=own)
    try:
        n = int(spec)
    except ValueError:
        raise ValueError(f"{spec!r}: expected a number of processes or auto") from None
    if n < 1:
        raise ValueError(f"{spec}: at least 1")
    return n


def available_cpus(*, cgroup: Path = Path("/sys/fs/cgroup"), own: Path = Path("/proc/self/cgroup")) -> int:
    """The CPUs this process may run on (its affinity), fewer if a CPU quota on its cgroup, or on
    any cgroup above it, says so (a container's limit, a systemd slice's CPUQuota)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cpus = os.cpu_count() or 1
    quotas = [q for q in (_cpu_quota(d) for d in _cgroup_dirs(cgroup, own)) if q is not None]
    return max(1, min(cpus, math.ceil(min(quotas)))) if quotas else max(1, cpus)


def _cgroup_dirs(root: Path, own: Path) -> list[Path]:
    """The cgroup v2 directories that may limit this process: its own and every one above it (in a
    container the root is its own), and the v1 cpu controller's."""
    dirs = [root, root / "cpu"]
    try:
        lines = own.read_text().splitlines()
    except OSError:
        return dirs
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "" and path.startswith("/"):  # the v2 hierarchy
            here = root / path.strip("/")
            while here != root and root in here.parents:
                dirs.append(here)
                here = here.parent
    return dirs


def _cpu_quota(directory: Path) -> float | None:
    """CPUs' worth of time a cgroup allows (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), None if unlimited."""
    try:
        quota, period = (directory / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((directory / "cpu.cfs_quota_us").read_text())
        period_us = int((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def worker_settings(settings: RunSettings, index: int, n: int) -> RunSettings:
    """A worker's settings: its even share of --rpm, --tpm and --max-cost; --max-failures is the parent's."""
    import dataclasses

    return dataclasses.replace(
        settings,
        rpm=None if settings.rpm is None else settings.rpm / n,
        tpm=None if settings.tpm is None else settings.tpm / n,
        max_cost=None if settings.max_cost is None else settings.max_cost / n,
        max_failures=None,
        processes=1,
    )


# -- the parent's side -----------------------------------------------------------------------
class Worker:
    """One worker process, as the parent sees it: its channel and the items it has in hand."""

    def __init__(self, index: int, process: subprocess.Popen[bytes]) -> None:
        self.index = index
        self.process = process
        self.channel: Channel | None = None
        self.pending: dict[str, asyncio.Future[dict[str, Any] | None]] = {}
        self.gone = False

    def fail_pending(self, reason: str) -> None:
        for future in self.pending.values():
            if not future.done():
                future.set_exception(RuntimeError(reason))
        self.pending.clear()


class Pool:
    """The N worker processes of a run: started, fed jobs, told things, ended."""

    def __init__(self, settings: RunSettings, base_url: str | None, api_key: str | None, runner: ProcessRunner) -> None:
        self.settings = settings
        self.base_url, self.api_key = base_url, api_key
        self.runner = runner
        self.workers: list[Worker] = []

    async def start(self) -> None:
        n = self.settings.processes
        for index in range(n):
            self.workers.append(await self._spawn(index, n))

    async def _spawn(self, index: int, n: int) -> Worker:
        to_worker_r, to_worker_w = os.pipe()
        to_parent_r, to_parent_w = os.pipe()
        # Started from the event loop's thread, which lives as long as the process: Linux's
        # parent-death signal (set by the worker) follows the thread that started it.
        process = subprocess.Popen(  # noqa: ASYNC220 - a fork and exec, once per worker at start
            [sys.executable, "-m", "streamdump.procworker", str(to_worker_r), str(to_parent_w), str(os.getpid())],
            pass_fds=(to_worker_r, to_parent_w),
            stdin=subprocess.DEVNULL,
        )
        os.close(to_worker_r)
        os.close(to_parent_w)
        worker = Worker(index, process)
        config = (
            "config",
            worker_settings(self.settings, index, n),
            self.base_url,
            self.api_key,
            index,
        )
        os.write(to_worker_w, encode(config))  # a few hundred bytes: the pipe's buffer takes them
        worker.channel = await Channel.open(
            read_fd=to_parent_r,
            write_fd=to_worker_w,
            on_message=lambda message: self._received(worker, message),
            on_close=lambda: self._lost(worker),
        )
        return worker

    def dispatch(self, job: Job) -> asyncio.Future[dict[str, Any] | None]:
        """Hand a job to its worker; the future gets its manifest entry (None: it has none)."""
        worker = self.workers[part_of(job.id, len(self.workers))]
        future: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        if worker.gone:
            future.set_exception(RuntimeError(f"worker process {worker.index + 1} has exited"))
            return future
        worker.pending[job.id] = future
        assert worker.channel is not None
        worker.channel.send("job", job)
        return future

    def tell(self, *message: Any, besides: Worker | None = None) -> None:
        for worker in self.workers:
            if worker is not besides and worker.channel is not None:
                worker.channel.send(*message)

    def _received(self, worker: Worker, message: Message) -> None:
        kind = message[0]
        runner = self.runner
        if kind == "done":
            _, job_id, entry, error = message
            future = worker.pending.pop(job_id, None)
            if future is not None and not future.done():
                if error is None:
                    future.set_result(entry)
                elif error[0] == "disk":
                    future.set_exception(DiskError(error[1]))
                else:
                    future.set_exception(RuntimeError(error[1]))
        elif kind == "request":
            runner.progress.request()
        elif kind == "retry":
            runner.progress.retry(message[1])
        elif kind == "spend":
            runner.progress.spend(message[1])
        elif kind == "say":
            _, always, text = message
            (runner.progress.error if always else runner.progress.note)(text)
        elif kind == "pause":
            self.tell("pause", message[1], besides=worker)
        elif kind == "no_usage":
            self.tell("no_usage", besides=worker)
        elif kind == "stop":
            runner.stop_run(message[1])

    def _lost(self, worker: Worker) -> None:
        worker.gone = True
        code = worker.process.poll()
        if worker.pending:
            worker.fail_pending(f"worker process {worker.index + 1} exited ({'code ' + str(code) if code else 'lost'})")
            self.runner.stop_run(f"worker process {worker.index + 1} exited unexpectedly")

    async def close(self) -> None:
        """Tell every worker to end; wait for them all (the signal deadline bounds this); kill stragglers."""
        self.tell("end")
        loop = asyncio.get_running_loop()
        waits = [loop.run_in_executor(None, worker.process.wait) for worker in self.workers]
        if waits:
            _, late = await asyncio.wait(waits, timeout=C.CLEANUP_TIMEOUT)
            if late:
                self.kill()
                await asyncio.wait(late)
        for worker in self.workers:
            if worker.channel is not None:
                worker.channel.close()

    def kill(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.kill()


class RemoteItems(Items):
    """The parent's side of an item: the worker lives it; the parent records how it ended."""

    pool: Pool

    async def run(self, job: Job, client: openai.AsyncOpenAI | None) -> None:
        future = self.pool.dispatch(job)
        try:
            entry = await asyncio.shield(future)
        except asyncio.CancelledError:
            # A signal: every worker was told to cancel; their records of the cancelled items follow.
            done, _ = await asyncio.wait({future}, timeout=C.CLEANUP_TIMEOUT)
            late = future.result() if done and not future.cancelled() and future.exception() is None else None
            if late is not None:
                await self._recorded(late)
            raise
        if entry is not None:
            await self._recorded(entry)

    async def _recorded(self, entry: dict[str, Any]) -> None:
        await self._record(entry, [])
        limit = self.settings.max_failures
        failed = self.result.statuses["failed"]
        if entry["status"] == "failed" and limit is not None and failed >= limit:
            items = "item" if failed == 1 else "items"
            self.stop_run(f"{failed} {items} failed (--max-failures {limit})")


class ProcessRunner(Runner):
    """The run's pool of ``-c`` workers hands the items to the worker processes (``Pool``)."""

    pool: Pool

    def _make_items(self, **shared: Any) -> Items:
        items = RemoteItems(**shared)
        items.pool = self.pool
        return items

    def stop_run(self, reason: str) -> None:
        first = not self.stop.is_set()
        super().stop_run(reason)
        if first and getattr(self, "pool", None) is not None:
            self.pool.tell("stop", reason)

    def cancel(self, signum: int, reason: str) -> None:
        if getattr(self, "pool", None) is not None:
            self.pool.tell("cancel", signum)
        super().cancel(signum, reason)


@contextlib.asynccontextmanager
async def process_runner(
    plan: InputPlan,
    defaults: Defaults,
    settings: RunSettings,
    base_url: str | None,
    api_key: str | None,
    progress: Progress,
) -> AsyncIterator[Runner]:
    """A runner whose items run in ``settings.processes`` worker processes; they end with it."""
    clients: Sequence[Any] = [None]  # the parent sends nothing itself
    runner = ProcessRunner(plan, defaults, settings, clients, progress)
    runner.pool = Pool(settings, base_url, api_key, runner)
    try:
        await runner.pool.start()
        yield runner
    except BaseException:
        runner.pool.kill()
        raise
    finally:
        await asyncio.shield(runner.pool.close())
