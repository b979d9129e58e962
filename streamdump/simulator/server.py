"""An OpenAI-compatible streaming server on 127.0.0.1: real HTTP/1.1, server-sent events.

``POST /v1/chat/completions`` (``stream: true``, ``stream_options.include_usage``; non-streamed
requests are answered too), ``GET /v1/models``, and ``GET /_sim/stats`` for what it has seen.
What it answers (several choices, tool calls, reasoning, refusals) is decided in ``replies``.
It records every request and measures how many streams and connections were open at once, so
tests and benchmarks can check the client from the server's side.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .replies import Choice, Style, interleave, reply
from .script import Fault, count_tokens_roughly, pick_fault

MAX_BODY = 16 * 1024 * 1024
REASONS = {
    200: "OK",
    307: "Temporary Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(frozen=True, slots=True)
class SimConfig:
    tokens_per_second: float = 50.0  # 0: as fast as possible
    ttft: float = 0.2  # seconds before the first token
    length: int = 40  # pieces (words) in each response
    seed: int = 0
    faults: tuple[Fault, ...] = ()
    model: str = "sim-1"
    usage: bool = True  # send a usage chunk when asked (many local servers never do)
    reject_stream_options: bool = False  # answer 400 to a request that has stream_options
    rpm_limit: int | None = None  # enforce requests per window, with x-ratelimit-* headers and 429s
    rpm_window: float = 60.0
    reasoning: int = 0  # pieces of reasoning before each answer
    reasoning_field: str = "reasoning_content"  # or "reasoning", as newer vLLM names it


@dataclass(slots=True)
class SimRequest:
    """One request as the simulator received it."""

    at: float  # time.monotonic() on arrival
    wall: float  # time.time() on arrival
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    prompt: str = ""
    nth: int = 1  # how many requests with this prompt so far, this one included
    fault: str | None = None
    ended: float | None = None  # time.monotonic() when a stream was sent to its end


@dataclass(slots=True)
class SimStats:
    requests: list[SimRequest] = field(default_factory=list)
    open_streams: int = 0
    peak_streams: int = 0
    open_connections: int = 0
    peak_connections: int = 0
    connections: int = 0
    rate_limited: int = 0  # 429s sent because of rpm_limit
    errors: list[str] = field(default_factory=list)  # handler crashes (simulator bugs)


class _Closed(Exception):
    """The client went away."""


def _prompt_of(body: dict[str, Any]) -> str:
    """The text faults match on: the last user message."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return json.dumps(content, ensure_ascii=False)
    return ""


class Simulator:
    """The server. ``await start()`` in a running loop, or use ``SimulatorThread``."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.stats = SimStats()
        self._seen: dict[str, int] = {}
        self._window_end = 0.0
        self._window_used = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = await asyncio.start_server(self._connection, host, port, limit=MAX_BODY)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._server.wait_closed()

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    # -- HTTP -------------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats = self.stats
        stats.connections += 1
        stats.open_connections += 1
        stats.peak_connections = max(stats.peak_connections, stats.open_connections)
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while await self._one_request(reader, writer):
                pass
        except (_Closed, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except Exception as exc:  # a bug in the simulator: count it, so tests fail on it
            stats.errors.append(repr(exc))
        finally:
            stats.open_connections -= 1
            self._handlers.discard(task)
            writer.close()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection should close."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, path, _ = request_line.split(" ", 2)
        headers = {}
        for line in header_lines:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        if length > MAX_BODY:
            await self._json(writer, 413, {"error": {"message": "body too large"}})
            return False
        raw = await reader.readexactly(length) if length else b""
        auth = headers.pop("authorization", "")  # never kept beyond this request, nor recorded
        now_m, now_w = time.monotonic(), time.time()
        path = path.split("?", 1)[0]
        if method == "GET" and path.rstrip("/").endswith("/models"):
            await self._json(
                writer,
                200,
                {"object": "list", "data": [{"id": self.config.model, "object": "model", "owned_by": "streamdump"}]},
            )
            return True
        if method == "GET" and path == "/_sim/stats":
            await self._json(writer, 200, self.stats_json())
            return True
        if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
            await self._json(writer, 404, {"error": {"message": f"no route {method} {path}"}})
            return True
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            await self._json(writer, 400, {"error": {"message": "body is not a JSON object"}})
            return True
        prompt = _prompt_of(body)
        nth = self._seen.get(prompt, 0) + 1
        self._seen[prompt] = nth
        fault = pick_fault(list(self.config.faults), prompt, nth)
        record = SimRequest(now_m, now_w, method, path, headers, body, prompt, nth, fault.kind if fault else None)
        self.stats.requests.append(record)
        limit_headers = self._rate_limit(now_m)
        if limit_headers is not None and limit_headers["x-ratelimit-remaining-requests"] == "-1":
            record.fault = "rate_limit"
            self.stats.rate_limited += 1
            limit_headers["x-ratelimit-remaining-requests"] = "0"
            limit_headers["Retry-After"] = limit_headers["x-ratelimit-reset-requests"].rstrip("s")
            await self._json(
                writer, 429, {"error": {"message": "simulated rate limit", "type": "requests"}}, limit_headers
            )
            return True
        if self.config.reject_stream_options and "stream_options" in body:
            record.fault = "stream_options"
            await self._json(
                writer,
                400,
                {
                    "error": {
                        "message": "Unrecognized request argument supplied: stream_options",
                        "type": "invalid_request_error",
                    }
                },
            )
            return True
        if fault is not None and fault.kind == "status":
            return await self._status_fault(writer, fault)
        if fault is not None and fault.kind == "echo-auth":
            status = int(fault.value or 400)
            message = f"invalid request header: authorization: {auth}"
            await self._json(writer, status, {"error": {"message": message}}, {"x-echo-authorization": auth})
            return True
        if fault is not None and fault.kind == "redirect":
            location = f"http://127.0.0.1:{self.port}/elsewhere{path}"
            await self._json(writer, 307, {"error": {"message": "moved"}}, {"Location": location})
            return True
        if not body.get("stream"):
            return await self._complete(writer, body, prompt, fault)
        try:
            return await self._stream(reader, writer, body, prompt, fault, limit_headers or {})
        finally:
            record.ended = time.monotonic()

    async def _json(
        self, writer: asyncio.StreamWriter, status: int, payload: object, extra: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        lines = [
            f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}",
            "Content-Type: application/json",
            f"Content-Length: {len(data)}",
        ]
        lines += [f"{key}: {value}" for key, value in (extra or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
        await writer.drain()

    async def _status_fault(self, writer: asyncio.StreamWriter, fault: Fault) -> bool:
        status = int(fault.value or 500)
        extra: dict[str, str] = {}
        if "retry_after" in fault.params:
            extra["Retry-After"] = f"{fault.params['retry_after']:g}"
        if "retry_after_ms" in fault.params:
            extra["retry-after-ms"] = f"{fault.params['retry_after_ms']:g}"
        if "retry_after_date" in fault.params:
            extra["Retry-After"] = email.utils.formatdate(time.time() + fault.params["retry_after_date"], usegmt=True)
        kind = "rate_limit_exceeded" if status == 429 else "invalid_request_error" if status < 500 else "server_error"
        await self._json(
            writer, status, {"error": {"message": f"simulated {status}", "type": kind, "code": status}}, extra
        )
        return True

    def _reply(self, body: dict[str, Any], prompt: str, fault: Fault | None) -> list[Choice]:
        config = self.config
        style = Style(
            length=config.length,
            seed=config.seed,
            reasoning=config.reasoning,
            reasoning_field=config.reasoning_field,
            refuse=fault is not None and fault.kind == "refuse",
        )
        if fault is not None and fault.kind == "single-choice":
            body = {**body, "n": 1}
        return reply(prompt, body, style)

    def _usage(self, body: dict[str, Any], choices: list[Choice]) -> dict[str, Any]:
        """Usage of the whole request, every choice counted once."""
        prompt_tokens = sum(
            count_tokens_roughly(str(m.get("content") or "")) for m in body.get("messages") or [] if isinstance(m, dict)
        )
        completion = sum(choice.tokens for choice in choices)
        usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
        }
        reasoning = sum(len(choice.reasoning) for choice in choices)
        if reasoning:
            usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
        return usage

    async def _complete(
        self, writer: asyncio.StreamWriter, body: dict[str, Any], prompt: str, fault: Fault | None
    ) -> bool:
        choices = self._reply(body, prompt, fault)
        await self._json(
            writer,
            200,
            {
                "id": "chatcmpl-sim",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model") or self.config.model,
                "choices": [
                    {
                        "index": choice.index,
                        "message": choice.message(self.config.reasoning_field),
                        "finish_reason": choice.finish,
                    }
                    for choice in choices
                ],
                "usage": self._usage(body, choices),
            },
        )
        return True

    async def _stream(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        body: dict[str, Any],
        prompt: str,
        fault: Fault | None,
        extra_headers: dict[str, str],
    ) -> bool:
        config = self.config
        kind = fault.kind if fault else None
        chunked = kind != "eof"
        choices = self._reply(body, prompt, fault)
        steps = interleave(choices)
        finishes = {choice.index: choice.finish for choice in choices}
        model = body.get("model") or config.model
        created = int(time.time())
        cid = f"chatcmpl-sim-{len(self.stats.requests)}"

        def event(
            delta: dict[str, Any] | None,
            finish_reason: str | None = None,
            usage: dict[str, Any] | None = None,
            index: int = 0,
        ) -> bytes:
            chunk: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [] if delta is None else [{"index": index, "delta": delta, "finish_reason": finish_reason}],
            }
            if usage is not None:
                chunk["usage"] = usage
            return b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"

        async def send(data: bytes, *, split: bool = False) -> None:
            if writer.is_closing():
                raise _Closed
            if split:
                cut = _multibyte_cut(data)
                if cut:
                    await send(data[:cut])
                    await pause(0.005)
                    data = data[cut:]
            writer.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            await writer.drain()

        # The client sends nothing while it reads a response, so a read returns only at hang-up.
        hangup = asyncio.ensure_future(reader.read(1))

        async def pause(seconds: float) -> None:
            if seconds > 0:
                done, _ = await asyncio.wait({hangup}, timeout=seconds)
                if done:
                    raise _Closed

        head = ["HTTP/1.1 200 OK", "Content-Type: text/event-stream", "Cache-Control: no-cache"]
        head.append(f"x-request-id: req_sim_{len(self.stats.requests)}")  # as OpenAI sends it
        head.append("Transfer-Encoding: chunked" if chunked else "Connection: close")
        head += [f"{key}: {value}" for key, value in extra_headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        self.stats.open_streams += 1
        self.stats.peak_streams = max(self.stats.peak_streams, self.stats.open_streams)
        try:
            await pause(config.ttft)
            for choice in choices:
                await send(event({"role": "assistant", "content": ""}, index=choice.index))
            gap = 1.0 / config.tokens_per_second if config.tokens_per_second > 0 else 0.0
            after = fault.after if fault else 0
            for position, (index, delta) in enumerate(steps):
                if fault is not None and position == after:
                    if kind == "drop":
                        writer.transport.abort()
                        return False
                    if kind == "stall":
                        await self._stall(fault, send, pause)
                    elif kind == "sse-error":
                        await send(
                            b'data: {"error": {"message": "simulated mid-stream error", "type": "server_error"}}\n\n'
                        )
                        await send(b"") if chunked else None
                        return chunked
                    elif kind == "malformed":
                        await send(b"data: {this is not json\n\n")
                    elif kind == "long-line":
                        await send(b"data: ")
                        for start in range(0, int(fault.value or 0), 1 << 16):
                            await send(b"x" * min(1 << 16, int(fault.value or 0) - start))
                    elif kind in ("truncate", "eof"):
                        if chunked:
                            await send(b"")
                            return True
                        return False
                    elif kind == "content-filter":
                        finishes = dict.fromkeys(finishes, "content_filter")
                        break
                if gap:
                    await pause(gap)
                await send(event(delta, index=index), split=kind == "split-utf8")
            for index, finish in finishes.items():
                await send(event({}, finish, index=index))
            if fault is not None and kind == "linger":
                await pause(fault.value or 0.0)  # finished, but neither closing nor saying [DONE]
            options = body.get("stream_options")
            if config.usage and isinstance(options, dict) and options.get("include_usage"):
                await send(event(None, usage=self._usage(body, choices)))
            await send(b"data: [DONE]\n\n")
            if chunked:
                await send(b"")
            return chunked
        finally:
            self.stats.open_streams -= 1
            if not hangup.done():
                hangup.cancel()
                # Wait for the read to be withdrawn before the connection reads its next request.
                await asyncio.wait({hangup})
            elif not hangup.cancelled():
                hangup.exception()  # a reset by a killed client: retrieved, so asyncio does not log it

    async def _stall(self, fault: Fault, send: Any, pause: Any) -> None:
        seconds = fault.value or 0.0
        ping = fault.params.get("ping")
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            await pause(min(left, ping) if ping else left)
            if ping and deadline - time.monotonic() > 0:
                await send(b": ping\n\n")

    def _rate_limit(self, now: float) -> dict[str, str] | None:
        """x-ratelimit-* headers for a fixed-window limit; remaining "-1" means this request is over it."""
        limit = self.config.rpm_limit
        if limit is None:
            return None
        window = self.config.rpm_window
        if now >= self._window_end:
            self._window_end, self._window_used = now + window, 0
        self._window_used += 1
        return {
            "x-ratelimit-limit-requests": str(limit),
            "x-ratelimit-remaining-requests": str(max(-1, limit - self._window_used)),
            "x-ratelimit-reset-requests": f"{self._window_end - now:.3f}s",
        }

    def stats_json(self) -> dict[str, Any]:
        stats = self.stats
        return {
            "requests": len(stats.requests),
            "peak_streams": stats.peak_streams,
            "open_streams": stats.open_streams,
            "peak_connections": stats.peak_connections,
            "open_connections": stats.open_connections,
            "connections": stats.connections,
        }


def _multibyte_cut(data: bytes) -> int:
    """An offset inside the first multi-byte UTF-8 character of ``data``, or 0 if there is none."""
    for index, byte in enumerate(data):
        if byte >= 0xC0:
            return index + 1
    return 0


class SimulatorThread:
    """Runs a Simulator on its own event loop in a daemon thread: ``with SimulatorThread() as sim``."""

    def __init__(self, config: SimConfig | None = None, *, port: int = 0) -> None:
        self.sim = Simulator(config)
        self._port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="streamdump-simulator", daemon=True)

    def __enter__(self) -> Simulator:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.sim.start(port=self._port), self._loop).result(timeout=10)
        return self.sim

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
