"""A worker process of ``--processes`` (see ``processes``): ``python -m streamdump.procworker
READ_FD WRITE_FD PARENT_PID``, started by the run's process, never by hand.

It streams the items the parent sends, each with ``item.Items`` as a one-process run does, writes
their files, and sends back each item's manifest entry.  It takes no signal from the terminal (the
parent relays one stop), and it does not outlive the parent: Linux's parent-death signal kills it
at once, and on every platform the parent's end of the pipe closing ends it within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import traceback
from typing import Any

from . import _constants as C
from .channel import Channel, Message, read_message
from .errors import DiskError
from .eventloop import loop_factory
from .gate import Gate
from .item import Items
from .output import OutputWriter
from .runstate import RunResult, RunSettings
from .transport import make_clients

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when the parent dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the line above: nobody will say so
        os._exit(1)


class _Relay:
    """What the items of this worker tell the run: through the parent."""

    def __init__(self) -> None:
        self.channel: Channel | None = None

    def send(self, *message: Any) -> None:
        if self.channel is not None:
            self.channel.send(*message)


class RelayProgress:
    """Progress as the items report it: counted by the parent from the entries; lines relayed."""

    def __init__(self, relay: _Relay) -> None:
        self._relay = relay

    def item(self, status: str, completion_tokens: int) -> None:
        pass  # the parent counts the entries it records

    def request(self) -> None:
        self._relay.send("request")

    def retry(self, message: str) -> None:
        self._relay.send("retry", message)

    def spend(self, amount: float) -> None:
        self._relay.send("spend", amount)

    def note(self, message: str) -> None:
        self._relay.send("say", False, message)

    def error(self, message: str) -> None:
        self._relay.send("say", True, message)

    def close(self) -> None:
        pass


class RelayGate(Gate):
    """This worker's share of --rpm/--tpm; a pause (a 429, the rate-limit headers) reaches every worker."""

    relay: _Relay

    def pause_for(self, seconds: float, *, relayed: bool = False) -> None:
        super().pause_for(seconds)
        if not relayed:
            self.relay.send("pause", seconds)


class RelayWriter(OutputWriter):
    """Writes the items' files; keeps each manifest entry for the parent, which appends it."""

    entries: dict[str, dict[str, Any]]

    def _open_manifest(self) -> int:
        self.entries = {}
        return os.open(os.devnull, os.O_WRONLY)  # no manifest here: the parent appends every line

    async def record(self, entry: dict[str, Any]) -> None:
        self.entries[entry["id"]] = entry


class WorkerItems(Items):
    """Items whose stream_options fallback reaches every worker."""

    relay: _Relay | None = None

    @property
    def include_usage(self) -> bool:
        return bool(self.__dict__.get("_include_usage", True))

    @include_usage.setter
    def include_usage(self, value: bool) -> None:
        if not value and self.include_usage and self.relay is not None:
            self.relay.send("no_usage")
        self.__dict__["_include_usage"] = value


async def serve(read_fd: int, write_fd: int, settings: RunSettings, base_url: str | None, api_key: str | None) -> None:
    relay = _Relay()
    stopped = asyncio.Event()
    tasks: dict[str, asyncio.Task[None]] = {}
    ended = asyncio.Event()
    clients = make_clients(
        base_url,
        api_key,
        concurrency=settings.concurrency,
        attempt_timeout=settings.attempt.attempt_timeout,
        http=settings.http,
    )
    turn = 0
    gate = RelayGate(rpm=settings.rpm, tpm=settings.tpm)
    gate.relay = relay

    def stop(reason: str) -> None:
        if not stopped.is_set():
            stopped.set()
            relay.send("stop", reason)

    async with contextlib.AsyncExitStack() as stack:
        for client in clients:
            await stack.enter_async_context(client)
        writer = RelayWriter(settings.out_dir)
        await stack.enter_async_context(writer)
        items = WorkerItems(
            settings=settings,
            gate=gate,
            writer=writer,
            results=None,
            progress=RelayProgress(relay),  # type: ignore[arg-type]
            result=RunResult(),
            stop_run=stop,
            stopped=stopped.is_set,
            in_flight=lambda: len(tasks),
        )
        items.relay = relay

        async def live(job: Any, client: Any) -> None:
            error: tuple[str, str] | None = None
            try:
                await items.run(job, client)
            except asyncio.CancelledError:
                pass
            except DiskError as exc:
                error = ("disk", str(exc))
            except Exception as exc:  # a bug: the parent stops the run and says why
                error = ("bug", "".join(traceback.format_exception(exc)).rstrip())
            finally:
                tasks.pop(job.id, None)
                relay.send("done", job.id, writer.entries.pop(job.id, None), error)

        def received(message: Message) -> None:
            nonlocal turn
            kind = message[0]
            if kind == "job":
                job = message[1]
                if stopped.is_set():
                    relay.send("done", job.id, None, None)  # not started: the parent counts it so
                    return
                client = clients[turn % len(clients)]
                turn += 1
                tasks[job.id] = asyncio.create_task(live(job, client), name=f"streamdump-item-{job.id}")
            elif kind == "pause":
                gate.pause_for(message[1], relayed=True)
            elif kind == "no_usage":
                items.__dict__["_include_usage"] = False
            elif kind == "stop":
                stopped.set()
            elif kind == "cancel":
                stopped.set()
                for task in list(tasks.values()):
                    task.cancel()
            elif kind == "end":
                ended.set()

        def parent_gone() -> None:  # the pipe closed: the parent has exited, or been killed
            stopped.set()
            for task in list(tasks.values()):
                task.cancel()
            ended.set()

        relay.channel = await Channel.open(
            read_fd=read_fd, write_fd=write_fd, on_message=received, on_close=parent_gone
        )
        await ended.wait()
        if tasks:
            await asyncio.wait(set(tasks.values()), timeout=C.CLEANUP_TIMEOUT)
    relay.channel.close()


def main(argv: list[str] | None = None) -> None:
    read_fd, write_fd, parent = (int(arg) for arg in (argv or sys.argv[1:]))
    # One stop for the whole run comes from the parent: a Ctrl-C at the terminal reaches the whole
    # process group, and must not be taken as a second one here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_parent(parent)
    try:
        _, settings, base_url, api_key, _index = read_message(read_fd)
    except EOFError:
        os._exit(1)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(serve(read_fd, write_fd, settings, base_url, api_key))


if __name__ == "__main__":
    main()
