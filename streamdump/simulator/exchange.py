"""One request and its answer on the wire: a JSON body, or a stream of events played with the
transport faults (drop, stall, malformed, long-line, truncate, eof, split-utf8, linger), paced, and stopped
as soon as the client hangs up."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .formats import Event
from .http import Request, json_response, multibyte_cut
from .script import Fault

if TYPE_CHECKING:
    from .server import Simulator

MALFORMED = b"data: {this is not json\n\n"


Handler = Callable[["Exchange"], Awaitable[bool]]  # a route: answer the exchange; False closes the connection


class Closed(Exception):
    """The client went away."""


@dataclass(slots=True)
class Exchange:
    """What a route handler gets: the simulator, the request, the path's ``{name}`` values, and
    ways to answer. A handler returns False when the connection should close after it."""

    sim: Simulator
    request: Request
    params: dict[str, str]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    _hangup: asyncio.Future[bytes] | None = field(default=None, repr=False)

    def json_object(self) -> dict[str, Any] | None:
        """The request body as a JSON object, or None if it is not one."""
        try:
            body = json.loads(self.request.raw)
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> bool:
        self.writer.write(json_response(status, payload, headers))
        await self.writer.drain()
        return True

    # -- streams ------------------------------------------------------------------------------
    async def play(self, events: list[Event], fault: Fault | None, headers: dict[str, str]) -> bool:
        """Send ``events`` as a server-sent event stream, breaking it as ``fault`` says."""
        config = self.sim.config
        stats = self.sim.stats
        kind = fault.kind if fault else None
        chunked = kind != "eof"
        head = ["HTTP/1.1 200 OK", "Content-Type: text/event-stream", "Cache-Control: no-cache"]
        head.append("Transfer-Encoding: chunked" if chunked else "Connection: close")
        head += [f"{key}: {value}" for key, value in headers.items()]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        # The client sends nothing while it reads a response, so a read returns only at hang-up.
        self._hangup = asyncio.ensure_future(self.reader.read(1))
        stats.open_streams += 1
        stats.peak_streams = max(stats.peak_streams, stats.open_streams)
        try:
            await self._pause(config.ttft)
            gap = 1.0 / config.tokens_per_second if config.tokens_per_second > 0 else 0.0
            pieces = 0
            for event in events:
                if event.linger:
                    if fault is not None and kind == "linger":
                        await self._pause(fault.value or 0.0)  # finished, but neither closing nor done
                    continue
                if not event.piece:
                    await self._send(event.data, chunked)
                    continue
                if fault is not None and pieces == fault.after:
                    if kind == "drop":
                        self.writer.transport.abort()
                        return False
                    if kind == "stall":
                        await self._stall(fault, chunked)
                    elif kind == "malformed":
                        await self._send(MALFORMED, chunked)
                    elif kind == "long-line":  # a data line that never ends
                        await self._send(b"data: ", chunked)
                        size = int(fault.value or 0)
                        for start in range(0, size, 1 << 16):
                            await self._send(b"x" * min(1 << 16, size - start), chunked)
                    elif kind in ("truncate", "eof"):
                        break
                if gap:
                    await self._pause(gap)
                await self._send(event.data, chunked, split=kind == "split-utf8")
                pieces += 1
            if chunked:
                await self._send(b"", chunked)
            return chunked
        finally:
            stats.open_streams -= 1
            hangup, self._hangup = self._hangup, None
            if not hangup.done():
                hangup.cancel()
                # Wait for the read to be withdrawn before the connection reads its next request.
                await asyncio.wait({hangup})
            elif not hangup.cancelled():
                hangup.exception()  # a reset by a killed client: retrieved, so asyncio does not log it

    async def _send(self, data: bytes, chunked: bool, *, split: bool = False) -> None:
        if self.writer.is_closing():
            raise Closed
        if split:
            cut = multibyte_cut(data)
            if cut:
                await self._send(data[:cut], chunked)
                await self._pause(0.005)
                data = data[cut:]
        self.writer.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        await self.writer.drain()

    async def _pause(self, seconds: float) -> None:
        if seconds > 0:
            assert self._hangup is not None
            done, _ = await asyncio.wait({self._hangup}, timeout=seconds)
            if done:
                raise Closed

    async def _stall(self, fault: Fault, chunked: bool) -> None:
        seconds = fault.value or 0.0
        ping = fault.params.get("ping")
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            await self._pause(min(left, ping) if ping else left)
            if ping and deadline - time.monotonic() > 0:
                await self._send(b": ping\n\n", chunked)
