"""The transport's floor: the same requests through the same openai clients as streamdump's
(``transport.make_clients``: one connection pool per 8 workers), each stream read to its end with
``with_streaming_response`` and ``aiter_bytes`` and thrown away.  No parsing, no files, no
retries: what streamdump costs above this is its own."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Any

from streamdump.transport import make_clients


async def run_floor(items: list[dict[str, Any]], base_url: str, concurrency: int, model: str) -> dict[str, Any]:
    clients = make_clients(base_url, "sk-bench", concurrency=concurrency, attempt_timeout=600.0)
    waiting = deque(items)
    durations: list[float] = []
    reads = 0

    async def worker(client: Any) -> None:
        nonlocal reads
        while waiting:
            item = waiting.popleft()
            started = time.monotonic()
            body = {"model": model, "messages": [{"role": "user", "content": item["prompt"]}], "stream": True}
            body["stream_options"] = {"include_usage": True}
            async with client.chat.completions.with_streaming_response.create(
                model=model, messages=(), stream=True, extra_body=body
            ) as response:
                async for _ in response.http_response.aiter_bytes():
                    reads += 1
            durations.append(time.monotonic() - started)

    async with contextlib.AsyncExitStack() as stack:
        for client in clients:
            await stack.enter_async_context(client)
        await asyncio.gather(*(worker(clients[i % len(clients)]) for i in range(concurrency)))
    return {
        "items": len(items),
        "ok": len(durations),
        "failed": len(items) - len(durations),
        "first_error": None,
        "chunks": None,
        "reads": reads,
        "durations": durations,
    }
