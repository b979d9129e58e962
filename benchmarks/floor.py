"""The floors: what reading the same streams costs with less and less above the socket.

Each floor sends the same requests as streamdump and reads every stream to its end, the way issue
12's table measured them: the bytes split into lines and each ``data:`` line parsed with orjson,
then thrown away.  No files, no retries, no bookkeeping: what streamdump costs above a floor is its
own.  From the most to the least machinery:

- ``openai-httpx``: ``AsyncOpenAI`` over httpx2 (``transport.make_clients(http="httpx")``);
- ``openai-aiohttp``: ``AsyncOpenAI`` over openai's aiohttp transport (``make_clients``' default,
  streamdump's own clients);
- ``aiohttp``: aiohttp alone, no openai;
- ``protocol``: a bare ``asyncio.Protocol`` with hand-parsed HTTP/1.1 (keep-alive, chunked).

The client process picks the event loop (``--loop asyncio|uvloop``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.parse
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

FLOORS = ("openai-httpx", "openai-aiohttp", "aiohttp", "protocol")


class Lines:
    """Split bytes into lines and parse each ``data:`` line with orjson, as every floor does."""

    __slots__ = ("events", "rest")

    def __init__(self) -> None:
        self.rest = b""
        self.events = 0

    def feed(self, data: bytes) -> None:
        lines = (self.rest + data).split(b"\n")
        self.rest = lines.pop()
        for line in lines:
            if line.startswith(b"data: {"):
                orjson.loads(line[6:])
                self.events += 1


def read_prompts(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _body(model: str, prompt: str) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def _drive(
    items: list[dict[str, Any]], concurrency: int, one: Callable[[int, dict[str, Any]], Awaitable[int]]
) -> dict[str, Any]:
    """``concurrency`` workers take the items in turn; ``one(worker, item)`` reads one stream."""
    waiting = deque(items)
    durations: list[float] = []
    errors: list[str] = []
    events = 0

    async def worker(index: int) -> None:
        nonlocal events
        while waiting:
            item = waiting.popleft()
            started = time.monotonic()
            try:
                events += await one(index, item)
            except Exception as exc:
                errors.append(repr(exc))
                continue
            durations.append(time.monotonic() - started)

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return {
        "items": len(items),
        "ok": len(durations),
        "failed": len(errors),
        "first_error": errors[0] if errors else None,
        "chunks": None,
        "events": events,
        "durations": durations,
    }


async def _openai(http: str, items: list[dict[str, Any]], base_url: str, concurrency: int, model: str) -> Any:
    from streamdump.transport import make_clients

    clients = make_clients(base_url, "sk-bench", concurrency=concurrency, attempt_timeout=600.0, http=http)

    async def one(index: int, item: dict[str, Any]) -> int:
        lines = Lines()
        async with clients[index % len(clients)].chat.completions.with_streaming_response.create(
            model=model, messages=(), stream=True, extra_body=_body(model, item["prompt"])
        ) as response:
            async for data in response.http_response.aiter_bytes():
                lines.feed(data)
        return lines.events

    async with contextlib.AsyncExitStack() as stack:
        for client in clients:
            await stack.enter_async_context(client)
        return await _drive(items, concurrency, one)


async def _aiohttp(items: list[dict[str, Any]], base_url: str, concurrency: int, model: str) -> Any:
    import aiohttp

    url = base_url.rstrip("/") + "/chat/completions"
    headers = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(index: int, item: dict[str, Any]) -> int:
            lines = Lines()
            data = orjson.dumps(_body(model, item["prompt"]))
            async with session.post(url, data=data, headers=headers) as response:
                response.raise_for_status()
                async for chunk in response.content.iter_any():
                    lines.feed(chunk)
            return lines.events

        return await _drive(items, concurrency, one)


class _HttpStream(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection reading chunked responses by hand."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.head_done = False
        self.lines = Lines()
        self.done: asyncio.Future[None] | None = None
        self.lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] # uvloop's is no asyncio.Transport subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionError("connection closed")
        if self.done is not None and not self.done.done():
            self.done.set_exception(self.lost)

    def request(self, raw: bytes) -> asyncio.Future[None]:
        assert self.transport is not None
        self.buffer, self.head_done, self.lines = b"", False, Lines()
        self.done = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return self.done

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        if not self.head_done:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            if not buffer.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(buffer[:end].decode("latin-1"))
            buffer, self.head_done = buffer[end + 4 :], True
        while True:  # chunked transfer encoding: SIZE\r\nDATA\r\n ... 0\r\n\r\n
            line_end = buffer.find(b"\r\n")
            if line_end < 0:
                break
            size = int(buffer[:line_end], 16)
            if len(buffer) < line_end + 2 + size + 2:
                break
            if size == 0:
                buffer = b""
                assert self.done is not None
                self.done.set_result(None)
                break
            self.lines.feed(buffer[line_end + 2 : line_end + 2 + size])
            buffer = buffer[line_end + 4 + size :]
        self.buffer = buffer


async def _protocol(items: list[dict[str, Any]], base_url: str, concurrency: int, model: str) -> Any:
    url = urllib.parse.urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    path = url.path.rstrip("/") + "/chat/completions"
    loop = asyncio.get_running_loop()
    connections: dict[int, _HttpStream] = {}

    async def one(index: int, item: dict[str, Any]) -> int:
        conn = connections.get(index)
        if conn is None or conn.lost is not None:
            _, conn = await loop.create_connection(_HttpStream, host, port)
            connections[index] = conn
        body = orjson.dumps(_body(model, item["prompt"]))
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer sk-bench\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        await conn.request(head.encode() + body)
        return conn.lines.events

    try:
        return await _drive(items, concurrency, one)
    finally:
        for conn in connections.values():
            if conn.transport is not None:
                conn.transport.close()


async def run_floor(floor: str, items: list[dict[str, Any]], base_url: str, concurrency: int, model: str) -> Any:
    if floor == "openai-httpx":
        return await _openai("httpx", items, base_url, concurrency, model)
    if floor == "openai-aiohttp":
        return await _openai("aiohttp", items, base_url, concurrency, model)
    if floor == "aiohttp":
        return await _aiohttp(items, base_url, concurrency, model)
    if floor == "protocol":
        return await _protocol(items, base_url, concurrency, model)
    raise ValueError(f"unknown floor {floor!r}: one of {', '.join(FLOORS)}")
