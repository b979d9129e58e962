"""From a run's settings to a finished run: check the input, prepare the out-dir, take its lock,
start the simulator when asked, build the client, install signal handlers, and run.

Nothing is sent and nothing is written to the out-dir until the whole input has been checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TextIO

from . import _constants as C
from .apikey import redacting
from .cost import usd
from .endpoint import Endpoint, public_url, resolve_endpoint
from .errors import NothingToDo
from .eventloop import loop_factory
from .fdlimit import ensure_descriptors
from .inputfile import InputPlan, scan
from .jobs import Defaults
from .lock import hold_lock
from .output import prepare_out_dir
from .progress import Progress
from .runner import Runner
from .runstate import RunResult, RunSettings
from .shard import Shard, manifest_name, summary_name
from .transport import LazyClients

__all__ = ["Endpoint", "describe", "exit_code", "public_url", "resolve_endpoint", "run_command"]

SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


@contextlib.contextmanager
def _simulator(enabled: bool) -> Iterator[str | None]:
    if not enabled:
        yield None
        return
    from .simulator import SimulatorThread

    with SimulatorThread() as sim:
        yield sim.base_url


def run_command(
    prompts: str,
    defaults: Defaults,
    settings: RunSettings,
    endpoint: Endpoint,
    *,
    quiet: bool = False,
    verbose: bool = False,
    stream: TextIO | None = None,
    progress_interval: float = C.PROGRESS_INTERVAL,
    wait_lock: bool = False,
    notify: Callable[[str], None] | None = None,
) -> RunResult:
    """Check, prepare, lock, run. Raises SetupError (nothing sent) before the run starts.

    ``notify`` gets the lines about the lock (waiting for another run; a filesystem without locks).
    """
    plan = scan(prompts, defaults, shard=settings.shard)
    if plan.empty:
        plan.discard()
        raise NothingToDo(f"{plan.display}: no prompts")
    try:
        ensure_descriptors(settings.concurrency, simulator=endpoint.simulate)
        prepare_out_dir(settings.out_dir)
        with hold_lock(settings.out_dir, settings.shard, wait=wait_lock, notify=notify or _to_stderr):
            progress = Progress(
                plan.count,
                quiet=quiet,
                verbose=verbose,
                stream=stream,
                interval=progress_interval,
                priced=settings.prices is not None,
                cap=settings.max_cost,
            )
            try:
                with _simulator(endpoint.simulate) as sim_url:
                    base_url = sim_url or endpoint.base_url
                    with asyncio.Runner(loop_factory=loop_factory()) as loop:
                        return loop.run(_run(plan, defaults, settings, base_url, endpoint.api_key, progress))
            finally:
                progress.close()
    finally:
        plan.discard()


def _to_stderr(message: str) -> None:
    sys.stderr.write(message + "\n")


class SignalHandler:
    """SIGINT/SIGTERM: the first stops the run cleanly (new requests stop, streams close, manifest
    and summary are written) with a safety net that exits anyway after ``deadline`` seconds; the
    second exits at once."""

    def __init__(
        self,
        runner: Runner,
        loop: asyncio.AbstractEventLoop,
        *,
        exit: Callable[[int], object] = os._exit,
        deadline: float = C.SIGNAL_EXIT_DEADLINE,
    ) -> None:
        self.runner, self.loop, self.exit, self.deadline = runner, loop, exit, deadline

    def __call__(self, signum: int) -> None:
        code = SIGNAL_EXIT.get(signal.Signals(signum), 1)
        if self.runner.result.signal is not None:
            self.exit(code)  # the second Ctrl-C: at once
            return
        self.runner.cancel(signum, f"{signal.Signals(signum).name} received")
        self.loop.call_later(self.deadline, self.exit, code)


async def _run(
    plan: InputPlan,
    defaults: Defaults,
    settings: RunSettings,
    base_url: str | None,
    api_key: str | None,
    progress: Progress,
) -> RunResult:
    if settings.processes > 1:
        from .processes import process_runner

        context = process_runner(plan, defaults, settings, base_url, api_key, progress)
    else:
        context = _local_runner(plan, defaults, settings, base_url, api_key, progress)
    loop = asyncio.get_running_loop()
    async with context as runner:
        on_signal = SignalHandler(runner, loop)
        installed = []
        for signum in SIGNAL_EXIT:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, on_signal, signum)
                installed.append(signum)
        try:
            with redacting(api_key):  # before the tasks start: they inherit it
                return await runner.run()
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)


@contextlib.asynccontextmanager
async def _local_runner(
    plan: InputPlan,
    defaults: Defaults,
    settings: RunSettings,
    base_url: str | None,
    api_key: str | None,
    progress: Progress,
) -> AsyncIterator[Runner]:
    clients = LazyClients(
        base_url,
        api_key,
        concurrency=settings.concurrency,
        attempt_timeout=settings.attempt.attempt_timeout,
        http=settings.http,
    )
    try:
        yield Runner(plan, defaults, settings, clients, progress)  # type: ignore[arg-type]
    finally:
        await clients.aclose()


def exit_code(result: RunResult) -> int:
    if result.signal is not None:
        return SIGNAL_EXIT.get(signal.Signals(result.signal), 1)
    return 0 if result.all_ok else 1


def describe(result: RunResult, out_dir: str, shard: Shard | None = None) -> str:
    """The one-paragraph summary that ends every run."""
    statuses = result.statuses
    parts = [f"{statuses.get('ok', 0) + result.skipped} ok"]
    if result.skipped:
        parts[0] += f" ({result.skipped} already done)"
    for status in sorted(set(statuses) - {"ok"}):
        invalid = f" ({result.invalid_outputs} invalid output)" if status == "failed" and result.invalid_outputs else ""
        parts.append(f"{statuses[status]} {status}{invalid}")
    if result.not_started:
        parts.append(f"{result.not_started} not started")
    special = {k: v for k, v in result.finish_reasons.items() if k != "stop"}
    finishes = "".join(f", {v} finished by {k}" for k, v in sorted(special.items()))
    wall = result.ended_at - result.started_at
    which = "" if shard is None else f"shard {shard}: "
    text = (
        f"streamdump: {which}{result.total} {'item' if result.total == 1 else 'items'}: {', '.join(parts)}{finishes}; "
        f"{result.prompt_tokens} prompt + {result.completion_tokens} completion tokens"
        f"{'' if result.cost_usd is None else f' ({usd(result.cost_usd)})'} in {wall:.1f} s; "
        f"output in {out_dir}/ ({manifest_name(shard)}, {summary_name(shard)})"
    )
    if result.stopped:
        text += f"; stopped early: {result.stopped}"
    if not result.all_ok:
        text += f"; `streamdump status {shlex.quote(out_dir)}` shows what is not ok"
    return text
