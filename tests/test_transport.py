"""The transports under AsyncOpenAI: how the clients are built, and how their errors become ours.

The failure modes end to end (on both transports) are in test_failures.py, test_streams.py and
test_signals.py; here are the parts no local server can show: a DNS failure (a test must not ask a
name server) and the clients' shared TLS context.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import httpx2
import openai
import pytest
from aiohttp.client_reqrep import ConnectionKey
from openai._vendor.httpx_aiohttp.transport import map_aiohttp_exceptions

from streamdump.errors import RetryableError
from streamdump.eventloop import loop_factory
from streamdump.simulator import Simulator
from streamdump.transport import TRANSPORTS, body_chunks, make_clients, mapped_errors, url_credentials_as_header

from support import Ran, expected_text, write_jsonl

REQUEST = httpx2.Request("POST", "http://streamdump-test.invalid/v1/chat/completions")


def as_openai_raises(aiohttp_error: Exception) -> openai.APIConnectionError:
    """The exception openai raises when its aiohttp transport meets ``aiohttp_error`` on connecting:
    the vendored transport's own mapping, then openai's wrapping (as in ``_base_client``)."""
    try:
        with map_aiohttp_exceptions():
            raise aiohttp_error
    except httpx2.TimeoutException as err:
        try:
            raise openai.APITimeoutError(request=REQUEST) from err
        except openai.APIConnectionError as wrapped:
            return wrapped
    except httpx2.TransportError as err:
        try:
            raise openai.APIConnectionError(request=REQUEST) from err
        except openai.APIConnectionError as wrapped:
            return wrapped
    raise AssertionError("the transport did not map the error")


def kind_of(exc: BaseException) -> str:
    with pytest.raises(RetryableError) as caught, mapped_errors(complete=lambda: False):
        raise exc
    return caught.value.kind


KEY = ConnectionKey("streamdump-test.invalid", 80, False, True, None, None, None, None)


@pytest.mark.parametrize(
    ("aiohttp_error", "kind"),
    [
        (aiohttp.ClientConnectorDNSError(KEY, socket.gaierror(-2, "Name or service not known")), "connection"),
        (aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "Connection refused")), "connection"),
        (aiohttp.ServerDisconnectedError(), "connection"),
        (aiohttp.ConnectionTimeoutError("Connection timeout to host"), "timeout"),
        (aiohttp.SocketTimeoutError("Timeout on reading data from socket"), "timeout"),
    ],
)
def test_aiohttp_errors_are_mapped_by_their_cause(aiohttp_error: Exception, kind: str) -> None:
    raised = as_openai_raises(aiohttp_error)
    if kind == "connection":  # what the vendored transport gets wrong, and why the cause is read
        assert isinstance(raised, openai.APITimeoutError)
    assert kind_of(raised) == kind


def test_a_read_timeout_mid_stream_is_a_timeout_on_both_transports() -> None:
    assert kind_of(httpx2.ReadTimeout("read timed out")) == "timeout"
    try:
        with map_aiohttp_exceptions():
            raise aiohttp.SocketTimeoutError("Timeout on reading data from socket")
    except httpx2.TimeoutException as exc:
        assert kind_of(exc) == "timeout"


@pytest.mark.parametrize("http", TRANSPORTS)
def test_every_client_shares_one_tls_context(http: str) -> None:
    async def build() -> list[object]:
        clients = make_clients("http://127.0.0.1:9/v1", None, concurrency=40, attempt_timeout=5.0, http=http)
        try:
            assert len(clients) == 5  # one per POOL_SIZE workers
            contexts = []
            for client in clients:
                transport = client._client._transport
                if http == "aiohttp":
                    assert isinstance(client._client, openai.DefaultAioHttpClient)
                    contexts.append(transport.ssl_context)  # type: ignore[attr-defined]
                else:
                    contexts.append(transport._pool._ssl_context)  # type: ignore[attr-defined]
            return contexts
        finally:
            for client in clients:
                await client.close()

    contexts = asyncio.run(build())
    assert all(context is contexts[0] for context in contexts)


def test_an_unknown_transport_is_refused() -> None:
    with pytest.raises(ValueError, match="aiohttp, httpx"):
        make_clients(None, None, concurrency=1, attempt_timeout=1.0, http="curl")


def test_the_cli_refuses_an_unknown_transport_before_sending(
    run_cli: Callable[..., Ran], sim: Simulator, tmp_path: Path
) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "hi"}])
    ran = run_cli(prompts, "--http", "curl", sim=sim)
    assert ran.exit_code == 2
    assert "--http must be one of aiohttp, httpx, not 'curl'" in ran.stderr
    assert sim.stats.requests == [] and not ran.out.exists()


def test_runs_use_uvloop_where_the_platform_has_it() -> None:
    factory = loop_factory()
    if sys.platform not in ("linux", "darwin"):
        assert factory is None
        return
    import uvloop

    loop = factory() if factory is not None else None
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        if loop is not None:
            loop.close()


async def _read_body(base_url: str, http: str) -> tuple[str, bytes]:
    clients = make_clients(base_url, None, concurrency=1, attempt_timeout=30.0, http=http)
    async with (
        clients[0] as client,
        client.chat.completions.with_streaming_response.create(
            model="m", messages=[{"role": "user", "content": "hello there"}], stream=True
        ) as response,
    ):
        chunks = body_chunks(response.http_response)
        return type(chunks).__name__, b"".join([data async for data in chunks])


@pytest.mark.parametrize("http", TRANSPORTS)
def test_body_chunks_reads_the_whole_body(sim: Simulator, http: str) -> None:
    kind, body = asyncio.run(_read_body(sim.base_url, http))
    # The aiohttp transport is read from aiohttp's own stream, not through httpx's five layers.
    assert kind == ("_AiohttpChunks" if http == "aiohttp" else "async_generator")
    assert expected_text("hello there") == "".join(
        json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
        for line in body.decode().splitlines()
        if line.startswith("data: {") and json.loads(line[6:])["choices"]
    )
    assert body.rstrip().endswith(b"data: [DONE]")


@pytest.mark.parametrize("http", TRANSPORTS)
def test_body_chunks_raise_httpx_errors_when_the_connection_drops(
    start_sim: Callable[..., Simulator], http: str
) -> None:
    sim = start_sim(faults=["drop,after=3"])
    with pytest.raises(httpx2.TransportError):
        asyncio.run(_read_body(sim.base_url, http))


def test_credentials_in_the_base_url_work_on_both_transports(
    run_cli: Callable[..., Ran], sim: Simulator, tmp_path: Path
) -> None:
    # aiohttp refuses a URL with credentials beside the bearer header; httpx sends them as Basic auth.
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "a"}])
    url = sim.base_url.replace("http://", "http://us%40er:hunter2@")
    for http in TRANSPORTS:
        ran = run_cli(prompts, "--http", http, "--base-url", url, "--force")
        assert ran.exit_code == 0, ran.stderr
    assert len(sim.stats.requests) == 2


def test_url_credentials_become_the_basic_auth_httpx_would_send() -> None:
    url, headers = url_credentials_as_header("https://us%40er:hunter2@example.test:8443/v1")
    assert url == "https://example.test:8443/v1"
    assert headers == {"Authorization": "Basic dXNAZXI6aHVudGVyMg=="}  # us@er:hunter2
    assert url_credentials_as_header("http://127.0.0.1:8000/v1") == ("http://127.0.0.1:8000/v1", None)
    assert url_credentials_as_header(None) == (None, None)


@contextlib.contextmanager
def gzip_sse_server(text_pieces: list[str]) -> Iterator[str]:
    """A one-route server on 127.0.0.1 that answers every request with a gzip-encoded SSE stream."""
    events = [
        {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        for piece in text_pieces
    ]
    events.append({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    sse = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
    body = gzip.compress(sse.encode())
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                length = int(re.search(rb"(?i)content-length: *(\d+)", data).group(1))  # type: ignore[union-attr]
                while len(data.split(b"\r\n\r\n", 1)[1]) < length:
                    data += conn.recv(65536)
                conn.sendall(head + body)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/v1"
    finally:
        done.set()
        thread.join()
        server.close()


@pytest.mark.parametrize("http", TRANSPORTS)
def test_a_compressed_stream_is_decoded_on_both_transports(
    run_cli: Callable[..., Ran], tmp_path: Path, http: str
) -> None:
    # body_chunks reads aiohttp's raw reader only for an identity body; gzip goes through httpx's decoder.
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "z", "prompt": "zip it"}])
    with gzip_sse_server(["Hello", ", ", "world"]) as base_url:
        ran = run_cli(prompts, "--http", http, "--base-url", base_url, "--max-retries", "0")
    assert ran.exit_code == 0, ran.stderr
    assert (ran.out / "z.txt").read_text() == "Hello, world"


def test_a_resume_with_nothing_to_send_never_loads_openai(
    run_cli: Callable[..., Ran], sim: Simulator, tmp_path: Path
) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": f"r{n}", "prompt": f"again {n}"} for n in range(3)])
    out = tmp_path / "out"
    assert run_cli(prompts, sim=sim, out=out).exit_code == 0
    script = (
        "import sys\n"
        "from streamdump.cli import app\n"
        "try:\n"
        "    app(sys.argv[1:])\n"
        "except SystemExit as stop:\n"
        "    print(stop.code, sorted({'openai', 'aiohttp'} & set(sys.modules)))\n"
    )
    args = ["run", str(prompts), "-o", str(out), "-q", "--base-url", sim.base_url]
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.split("\n")[0] == "0 []", done.stderr
    assert len(sim.stats.requests) == 3
