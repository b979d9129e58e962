"""An OpenAI-compatible streaming server on 127.0.0.1: real HTTP/1.1, server-sent events.

It serves exactly the paths a real server serves, under ``/v1`` (``base_url`` ends in it):

    POST /v1/chat/completions   chat (``chat``)
    POST /v1/responses          the Responses API (``responses``)
    POST /v1/completions        text completions (``completions``)
    GET  /v1/models             the models it serves; GET /v1/models/{model} one of them
    /v1/files, /v1/batches      the Batch API (``batches``)
    GET  /_sim/stats            what it has seen

Any other path gets 404 and a known path asked with another method 405, each with an
OpenAI-style error body, so a client pointed at a wrong base URL fails here as it would there.
Each wire format is its own module; adding a route is one line in ``default_routes``, with a
handler ``async def handle(ex: Exchange) -> bool`` (``ex.params`` holds the path's ``{name}``
values, ``ex.json_object()`` the body, ``await ex.json(status, payload)`` answers).
It records every request for text and measures how many streams and connections were open at
once, so tests and benchmarks can check the client from the server's side.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from . import chat, completions, responses
from .batches import BATCH_ROUTES, BatchApi
from .exchange import Closed, Exchange, Handler
from .formats import Format
from .generate import generation_route
from .http import (
    MAX_BODY,
    TooLarge,
    error_body,
    invalid_method,
    invalid_url,
    json_response,
    model_not_found,
    read_request,
)
from .routes import Miss, RouteTable
from .state import SimConfig, SimRequest, SimStats

__all__ = [
    "FORMATS",
    "Handler",
    "SimConfig",
    "SimRequest",
    "SimStats",
    "Simulator",
    "SimulatorThread",
    "default_routes",
]


async def _list_models(ex: Exchange) -> bool:
    data = [_model(name) for name in ex.sim.config.models or (ex.sim.config.model,)]
    return await ex.json(200, {"object": "list", "data": data})


async def _get_model(ex: Exchange) -> bool:
    name, served = ex.params["model"], ex.sim.config.models
    if served and name not in served:
        return await ex.json(404, model_not_found(name))
    return await ex.json(200, _model(name))


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "streamdump"}


async def _stats(ex: Exchange) -> bool:
    return await ex.json(200, ex.sim.stats_json())


# The wire formats by path (a Batch API line's ``url`` names one of these).
FORMATS: dict[str, Format] = {
    "/v1/chat/completions": chat.FORMAT,
    "/v1/responses": responses.FORMAT,
    "/v1/completions": completions.FORMAT,
}


def default_routes() -> RouteTable[Handler]:
    """Every path the simulator serves. A new route is one line here."""
    table: RouteTable[Handler] = RouteTable()
    for path, wire in FORMATS.items():
        table.add("POST", path, generation_route(wire))
    table.add("GET", "/v1/models", _list_models)
    table.add("GET", "/v1/models/{model}", _get_model)
    table.add("GET", "/_sim/stats", _stats)
    for method, path in BATCH_ROUTES:
        table.add(method, path, _batch_api)
    return table


async def _batch_api(ex: Exchange) -> bool:
    """/v1/files and /v1/batches: the Batch API (``batches``)."""
    request = ex.request
    target = f"{request.path}?{request.query}" if request.query else request.path
    return await ex.sim.batch_api.serve(ex.writer, request.method, target, request.headers, request.raw)


class Simulator:
    """The server. ``await start()`` in a running loop, or use ``SimulatorThread``."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.stats = SimStats()
        self.routes = default_routes()
        self.batch_api = BatchApi(self.config, FORMATS)
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

    def seen(self, prompt: str) -> int:
        """Count one more request carrying ``prompt``; how many so far, this one included."""
        nth = self._seen.get(prompt, 0) + 1
        self._seen[prompt] = nth
        return nth

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
        except (Closed, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
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
            request = await read_request(reader)
        except TooLarge:
            writer.write(json_response(413, error_body("The request body is too large.")))
            await writer.drain()
            return False
        if request is None:
            return False
        found = self.routes.match(request.method, request.path)
        if isinstance(found, Miss):
            self.stats.misses.append(f"{found.status} {request.method} {request.path}")
            if found.status == 405:
                body, headers = invalid_method(request.method, request.path), {"Allow": ", ".join(found.allow)}
            else:
                body, headers = invalid_url(request.method, request.path), {}
            writer.write(json_response(found.status, body, headers))
            await writer.drain()
            return True
        return await found.handler(Exchange(self, request, found.params, reader, writer))

    def rate_limit(self, now: float) -> dict[str, str] | None:
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
