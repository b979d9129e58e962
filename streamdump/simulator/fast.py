"""A fast simulator for load tests: one ticker feeds every open stream, as a batched decoder does.

``server.Simulator`` gives each stream its own coroutine and timers, which is right for faults
and costs too much CPU to drive a thousand streams.  Here a response's bytes are built once, when
its request arrives; a single timer ticks ``tokens_per_second`` times a second and writes the next
precomputed chunk to every open stream.  The text is ``script.response_pieces``, the same as the
ordinary simulator's.  No faults; streamed chat completions only (plus ``GET /v1/models``); any
other path gets 404, a known one with another method 405, as from the ordinary simulator.

A stream joins at the first tick at least ``ttft`` after its request (it gets its role chunk
then), and gets piece k at the k-th tick after that; its last piece goes out with the finish
chunk, the usage chunk and ``[DONE]``.  With ``tokens_per_second=0`` a response is sent whole.

With ``timeline=True`` it records when each tick went out (``time.monotonic()``, one clock for
every process on Linux and macOS) and which tick began each prompt's stream, so a benchmark can
tell when every piece was sent: ``GET /_sim/timeline``.  ``GET /_sim/stats`` also reports how late
the ticker ran and the simulator's own CPU time, to show whether it kept up.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import time
from collections.abc import Callable
from typing import Any

from .chat import prompt_of as _prompt_of
from .http import MAX_BODY, error_body, invalid_method, invalid_url, json_response, model_not_found
from .routes import Miss, RouteTable
from .script import count_tokens_roughly, response_pieces
from .state import SimConfig

MAX_HEAD = 64 * 1024
_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
_ROLE = b'[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]'
_END = b"0\r\n\r\n"


def _frame(data: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


@functools.lru_cache(maxsize=4096)
def _content(piece: str) -> bytes:
    text = json.dumps(piece, ensure_ascii=False).encode()
    return b'[{"index":0,"delta":{"content":' + text + b'},"finish_reason":null}]'


def answer(body: dict[str, Any], config: SimConfig) -> tuple[list[str], str]:
    """The pieces of the answer to ``body`` and its finish_reason (``max_tokens`` cuts it: length)."""
    prompt = _prompt_of(body)
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    pieces = response_pieces(prompt, length=config.length, seed=config.seed)
    if isinstance(limit, int) and 0 < limit < len(pieces):
        return pieces[:limit], "length"
    return pieces, "stop"


def build_frames(body: dict[str, Any], config: SimConfig, number: int) -> list[bytes]:
    """Every write of one streamed response, in order: role chunk, one per piece (the last with the
    finish chunk, usage and ``[DONE]``), each framed for chunked transfer encoding."""
    pieces, finish = answer(body, config)
    model = body.get("model") or config.model
    head = b'data: {"id":"chatcmpl-sim-%d","object":"chat.completion.chunk","created":%d,"model":%s,"choices":' % (
        number,
        int(time.time()),
        json.dumps(model).encode(),
    )
    frames = [_frame(head + _ROLE + b"}\n\n")]
    frames += [_frame(head + _content(piece) + b"}\n\n") for piece in pieces]
    tail = _frame(head + b'[{"index":0,"delta":{},"finish_reason":"%s"}]}\n\n' % finish.encode())
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        prompt_tokens = sum(
            count_tokens_roughly(str(m.get("content") or "")) for m in body.get("messages") or [] if isinstance(m, dict)
        )
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(pieces)}
        usage["total_tokens"] = prompt_tokens + len(pieces)
        tail += _frame(head + b'[],"usage":' + json.dumps(usage).encode() + b"}\n\n")
    frames[-1] += tail + _frame(b"data: [DONE]\n\n") + _END
    return frames


class _Stream:
    __slots__ = ("conn", "frames", "next")

    def __init__(self, conn: _Connection, frames: list[bytes]) -> None:
        self.conn = conn
        self.frames = frames
        self.next = 0


class _Connection(asyncio.Protocol):
    """One client connection: HTTP/1.1 requests one after another (keep-alive, no pipelining)."""

    def __init__(self, server: FastSimulator) -> None:
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.stream: _Stream | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connection_opened()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.server.connection_closed(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.serve_buffered()

    def serve_buffered(self) -> None:
        """Answer the requests waiting in the buffer, unless a response is still streaming."""
        while self.stream is None and self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    self.transport.close()
                return
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            method, path, *_ = lines[0].split(" ")
            length = 0
            for line in lines[1:]:
                key, _, value = line.partition(":")
                if key.strip().lower() == "content-length":
                    length = int(value.strip() or 0)
            if length > MAX_BODY:
                self.transport.write(json_response(413, error_body("The request body is too large.")))
                self.transport.close()
                return
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            body = bytes(self.buffer[end + 4 : total])
            del self.buffer[:total]
            self.server.handle(self, method, path.split("?", 1)[0], body)

    def write(self, data: bytes) -> bool:
        if self.transport is None or self.transport.is_closing():
            return False
        self.transport.write(data)
        return True


class FastSimulator:
    """``await start()`` in a running loop; ``serve_forever()``; ``await stop()``."""

    def __init__(self, config: SimConfig | None = None, *, timeline: bool = False) -> None:
        self.config = config or SimConfig()
        self.port = 0
        self.timeline = timeline
        self.tick_times: list[float] = []  # time.monotonic() of tick n at [n - 1] (with timeline)
        self.joined: dict[str, int] = {}  # prompt -> the tick that sent its role chunk (with timeline)
        self.requests = 0
        self.connections = 0
        self.open_connections = 0
        self.peak_connections = 0
        self.open_streams = 0
        self.peak_streams = 0
        self.late_ticks = 0  # ticks that ran more than one interval late
        self.max_lateness = 0.0
        self._tps = self.config.tokens_per_second
        self._interval = 1.0 / self._tps if self._tps > 0 else 0.0
        self._tick = 0  # ticks done
        self._next_at = 0.0  # loop time the next tick is due
        self._handle: asyncio.TimerHandle | None = None
        self._active: list[_Stream] = []
        self._waiting: dict[int, list[tuple[str, _Stream]]] = {}
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._routes: RouteTable[Callable[[_Connection, bytes], None]] = RouteTable()
        self._routes.add("POST", "/v1/chat/completions", self._chat)
        self._routes.add("GET", "/v1/models", self._models)
        self._routes.add("GET", "/_sim/stats", self._stats)
        self._routes.add("GET", "/_sim/timeline", self._timeline)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await self._loop.create_server(lambda: _Connection(self), host, port, backlog=4096)
        self.port = self._server.sockets[0].getsockname()[1]

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    async def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    # -- connections and requests -------------------------------------------------------------
    def connection_opened(self) -> None:
        self.connections += 1
        self.open_connections += 1
        self.peak_connections = max(self.peak_connections, self.open_connections)

    def connection_closed(self, conn: _Connection) -> None:
        self.open_connections -= 1
        if conn.stream is not None:  # the ticker drops it on its next visit
            conn.stream = None
            self.open_streams -= 1

    def handle(self, conn: _Connection, method: str, path: str, raw: bytes) -> None:
        found = self._routes.match(method, path)
        if isinstance(found, Miss):
            if found.status == 405:
                conn.write(json_response(405, invalid_method(method, path), {"Allow": ", ".join(found.allow)}))
            else:
                conn.write(json_response(404, invalid_url(method, path)))
            return
        found.handler(conn, raw)

    def _models(self, conn: _Connection, raw: bytes) -> None:
        models = [
            {"id": name, "object": "model", "created": 0, "owned_by": "streamdump"}
            for name in self.config.models or (self.config.model,)
        ]
        conn.write(json_response(200, {"object": "list", "data": models}))

    def _stats(self, conn: _Connection, raw: bytes) -> None:
        conn.write(json_response(200, self.stats_json()))

    def _timeline(self, conn: _Connection, raw: bytes) -> None:
        conn.write(json_response(200, {"tick_times": self.tick_times, "joined": self.joined}))

    def _chat(self, conn: _Connection, raw: bytes) -> None:
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict) or not body.get("stream"):
            conn.write(json_response(400, error_body("the fast simulator answers streamed chat completions only")))
            return
        if self.config.models and body.get("model") not in self.config.models:
            conn.write(json_response(404, model_not_found(body.get("model"))))
            return
        self.requests += 1
        self._start_stream(conn, body)

    def _start_stream(self, conn: _Connection, body: dict[str, Any]) -> None:
        stream = conn.stream = _Stream(conn, build_frames(body, self.config, self.requests))
        self.open_streams += 1
        self.peak_streams = max(self.peak_streams, self.open_streams)
        conn.write(_SSE_HEAD)
        prompt = _prompt_of(body) if self.timeline else ""
        if not self._interval:
            self._send_whole(stream)
        else:
            self._admit(prompt, stream)

    def _send_whole(self, stream: _Stream) -> None:
        assert self._loop is not None
        if self.config.ttft > 0:  # the one per-stream timer, and only in this mode
            self._loop.call_later(self.config.ttft, self._finish, stream, b"".join(stream.frames))
        else:
            self._finish(stream, b"".join(stream.frames))

    def _finish(self, stream: _Stream, data: bytes) -> None:
        conn = stream.conn
        if conn.stream is not stream:
            return  # the client went away
        conn.write(data)
        conn.stream = None
        self.open_streams -= 1
        conn.serve_buffered()

    # -- the ticker -----------------------------------------------------------------------------
    def _admit(self, prompt: str, stream: _Stream) -> None:
        """Put a new stream on the first tick at least ttft from now; start the ticker if idle."""
        assert self._loop is not None
        due = self._loop.time() + self.config.ttft
        if self._handle is None:
            self._next_at = due
            self._handle = self._loop.call_at(due, self._on_tick)
            ahead = 0
        else:
            ahead = max(0, math.ceil((due - self._next_at) / self._interval - 1e-9))
        self._waiting.setdefault(self._tick + 1 + ahead, []).append((prompt, stream))

    def _on_tick(self) -> None:
        assert self._loop is not None
        self._tick += 1
        now = self._loop.time()
        lateness = now - self._next_at
        self.max_lateness = max(self.max_lateness, lateness)
        if lateness > self._interval:
            self.late_ticks += 1
        if self.timeline:
            self.tick_times.append(time.monotonic())
        for prompt, stream in self._waiting.pop(self._tick, ()):
            if self.timeline:
                self.joined[prompt] = self._tick
            self._active.append(stream)
        alive = []
        for stream in self._active:
            if stream.conn.stream is not stream:
                continue  # its client hung up
            frames = stream.frames
            stream.conn.write(frames[stream.next])
            stream.next += 1
            if stream.next < len(frames):
                alive.append(stream)
            else:
                self._finish(stream, b"")
        self._active = alive
        # The next tick keeps to the schedule; one that is already late runs at once, without
        # bunching up the ticks it missed.
        self._next_at = max(self._next_at + self._interval, now)
        if self._active or self._waiting:
            self._handle = self._loop.call_at(self._next_at, self._on_tick)
        else:
            self._handle = None

    def stats_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "peak_streams": self.peak_streams,
            "open_streams": self.open_streams,
            "peak_connections": self.peak_connections,
            "open_connections": self.open_connections,
            "connections": self.connections,
            "ticks": self._tick,
            "late_ticks": self.late_ticks,
            "max_lateness_ms": round(self.max_lateness * 1000, 3),
            "cpu_s": round(time.process_time(), 3),
        }
