"""Where the HTTP clients are built, and where their errors become ours.

This is the one place that knows which HTTP stack sits under ``AsyncOpenAI``: openai's vendored
aiohttp transport (``DefaultAioHttpClient``, the default: aiohttp's C HTTP parser, about half the
CPU a chunk) or httpx2's own (``--http httpx``).  Everything above it sees ``AsyncOpenAI`` clients
and our ``AttemptError`` tree: ``mapped_errors`` is the one table from the transports' and openai's
exceptions to ours (httpx's ``_transports/default.py`` maps its transport's exceptions the same
way, with one context manager).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import math
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from . import _constants as C
from .apikey import redact
from .endpoint import public_url
from .errors import AttemptError, FatalRequestError, RetryableError
from .retry import is_retried_status, parse_retry_after

if TYPE_CHECKING:
    import httpx2
    import openai

NO_KEY = "sk-no-key-needed"
TRANSPORTS = ("aiohttp", "httpx")  # --http; the first is the default


def make_clients(
    base_url: str | None,
    api_key: str | None,
    *,
    concurrency: int,
    attempt_timeout: float,
    http: str = C.DEFAULT_HTTP,
) -> list[openai.AsyncOpenAI]:
    """AsyncOpenAI clients with our retry policy (theirs is off), one per group of workers.

    The workers share them in groups of at most ``POOL_SIZE``, each client with its own connection
    pool, ``concurrency`` connections in all.  httpcore's pool examines every connection it holds
    (an idle one with a system call) each time a request starts or a response ends, so one pool of
    N connections costs O(N) per request: at -c 500 that was 40% of the client's CPU.  All pools
    share one TLS context: building one takes tens of milliseconds of CPU, and the aiohttp
    transport would build one per client if it were not given ours.
    """
    import httpx2
    import openai

    if http not in TRANSPORTS:
        raise ValueError(f"unknown HTTP transport {http!r}: one of {', '.join(TRANSPORTS)}")
    groups = math.ceil(concurrency / C.POOL_SIZE)
    size = math.ceil(concurrency / groups)
    limits = httpx2.Limits(max_connections=size, max_keepalive_connections=size)
    # No read timeout: the attempt's watchdog bounds the wait for every read (--idle-timeout) and
    # the whole attempt (--timeout).  aiohttp re-arms a read timeout on every network read (a
    # timer cancelled and made anew, per chunk), and httpx2 opens a cancel scope per read.
    timeout = httpx2.Timeout(attempt_timeout, connect=C.CONNECT_TIMEOUT, read=None)
    tls = httpx2.create_ssl_context()
    http_client = openai.DefaultAioHttpClient if http == "aiohttp" else openai.DefaultAsyncHttpxClient
    headers: dict[str, str] | None = None
    if http == "aiohttp":
        base_url, headers = url_credentials_as_header(base_url)
    return [
        openai.AsyncOpenAI(
            api_key=api_key or NO_KEY,
            base_url=base_url,
            max_retries=0,
            timeout=timeout,
            default_headers=headers,
            # No redirect is followed: it would re-send the prompt to a host the user never named.
            http_client=http_client(limits=limits, timeout=timeout, verify=tls, follow_redirects=False),
        )
        for _ in range(groups)
    ]


class LazyClients:
    """``make_clients``' clients, built when a request first needs one: a resumed run with nothing
    left to send never imports openai and aiohttp (about a second of CPU, a fifth of resuming
    100,000 finished items).  ``clients[i]`` is a stand-in for the i-th client; ``aclose`` closes
    those that were built."""

    def __init__(self, base_url: str | None, api_key: str | None, *, concurrency: int, **options: Any) -> None:
        self._args, self._options = (base_url, api_key), {"concurrency": concurrency, **options}
        self._clients: list[openai.AsyncOpenAI] | None = None
        self.count = math.ceil(concurrency / C.POOL_SIZE)

    def built(self) -> list[openai.AsyncOpenAI]:
        if self._clients is None:
            self._clients = make_clients(*self._args, **self._options)
        return self._clients

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Any:
        return _LazyClient(self, index)

    async def aclose(self) -> None:
        for client in self._clients or ():
            await client.close()


class _LazyClient:
    __slots__ = ("_clients", "_index")

    def __init__(self, clients: LazyClients, index: int) -> None:
        self._clients, self._index = clients, index

    def __getattr__(self, name: str) -> Any:
        return getattr(self._clients.built()[self._index], name)


def url_credentials_as_header(url: str | None) -> tuple[str | None, dict[str, str] | None]:
    """``http://user:pass@host/v1`` as httpx sends it: the URL without them, and Basic auth (which
    takes the place of the bearer key, as httpx's does).  aiohttp refuses a URL with credentials
    beside an Authorization header."""
    if url is None:
        return None, None
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    user = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    host = parts.netloc.rsplit("@", 1)[-1]
    return urllib.parse.urlunsplit(parts._replace(netloc=host)), {"Authorization": f"Basic {token}"}


def body_chunks(response: httpx2.Response) -> AsyncIterator[bytes]:
    """The body of a streamed response, chunk by chunk as it arrives, by the shortest way there is.

    On the aiohttp transport that is aiohttp's own ``readany``: httpx's ``aiter_bytes`` reaches
    it through five async generators (``aiter_bytes``, ``aiter_raw``, httpx's bound stream, the
    vendored transport's stream, aiohttp's ``iter_chunked``), a few microseconds a chunk, on the
    hot path of every stream.  Errors are mapped as the vendored transport maps them.  A body
    with a content-encoding, or any other transport, goes through ``aiter_bytes``.
    """
    content = _aiohttp_content(response)
    if content is None:
        return response.aiter_bytes()
    return _AiohttpChunks(content)


def _aiohttp_content(response: httpx2.Response) -> Any:
    """The aiohttp ``StreamReader`` under ``response``, or None (not that transport, or encoded)."""
    if response.headers.get("content-encoding", "identity").lower() != "identity":
        return None
    # httpx2's BoundAsyncStream holds the transport's stream; the vendored one holds aiohttp's response.
    transport_stream = getattr(response.stream, "_stream", None)
    aiohttp_response = getattr(transport_stream, "_aiohttp_response", None)
    return getattr(aiohttp_response, "content", None)


class _AiohttpChunks:
    __slots__ = ("_read",)

    def __init__(self, content: Any) -> None:
        self._read = content.readany

    def __aiter__(self) -> _AiohttpChunks:
        return self

    async def __anext__(self) -> bytes:
        try:
            data: bytes = await self._read()
        except Exception:
            from openai._vendor.httpx_aiohttp.transport import map_aiohttp_exceptions

            with map_aiohttp_exceptions():
                raise
        if not data:
            raise StopAsyncIteration
        return data


def status_error(exc: openai.APIStatusError) -> AttemptError:
    """An HTTP error status as our error: retried (408, 409, 429, 5xx) or not (other 4xx)."""
    status = exc.status_code
    headers = dict(exc.response.headers)
    if 300 <= status < 400:
        target = exc.response.headers.get("location") or "(no Location header)"
        message = f"HTTP {status}: the server redirects to {target}, and streamdump follows no redirect"
        return FatalRequestError(message, status=status, kind="redirect", headers=headers)
    message = f"HTTP {status}: {server_message(exc)}"
    url = _url(exc.request)
    if is_retried_status(status):
        retry_after = parse_retry_after(exc.response.headers, now=time.time())
        return RetryableError(
            message,
            status=status,
            retry_after=retry_after,
            kind=f"http_{status}",
            headers=headers,
            body=exc.body,
            url=url,
        )
    return FatalRequestError(message, status=status, kind=f"http_{status}", headers=headers, body=exc.body, url=url)


def _url(request: object) -> str | None:
    """The URL a request went to, fit to show (no credentials, no query)."""
    url = getattr(request, "url", None)
    return public_url(str(url)) if url is not None else None


def server_message(exc: openai.APIStatusError) -> str:
    """The server's own words: OpenAI's ``error.message``, FastAPI's ``detail``, Ollama's ``error``
    string, or the start of a body that is not JSON; openai's bare "Error code: N" only when the
    body is empty."""
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, str) and error:
            return error
        if isinstance(error, dict):
            for key in ("message", "detail"):
                if isinstance(error.get(key), str) and error[key]:
                    return str(error[key])
        return _clip(json.dumps(body, ensure_ascii=False))
    if isinstance(body, str) and body.strip():
        return _clip(" ".join(body.split()))
    try:
        return f"{HTTPStatus(exc.status_code).phrase} (no error body)"
    except ValueError:
        return exc.message


def _clip(text: str, limit: int = C.SERVER_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@contextlib.contextmanager
def mapped_errors(*, complete: Callable[[], bool]) -> Iterator[None]:
    """``_mapped_errors``, with the API key taken out of every error it lets through (see ``apikey``)."""
    try:
        with _mapped_errors(complete=complete):
            yield
    except AttemptError as exc:
        exc.args = tuple(redact(list(exc.args)))
        exc.body, exc.headers = redact(exc.body), redact(exc.headers)
        raise


@contextlib.contextmanager
def _mapped_errors(*, complete: Callable[[], bool]) -> Iterator[None]:
    """Turn whatever the client raises inside the block into an ``AttemptError``.

    ``complete()`` says whether every choice had already finished: a connection lost after that
    lost only the stream's epilogue (usage, ``[DONE]``), and the answer stands.
    """
    import httpx2
    import openai

    try:
        yield
    except openai.APIStatusError as exc:
        raise status_error(exc) from None
    except openai.APIConnectionError as exc:  # APITimeoutError included
        if _out_of_descriptors(exc):  # this machine's limit, not the server: no wrong endpoint
            raise RetryableError(
                "cannot open a connection: Too many open files (the limit on open files is reached; lower -c)",
                kind="fd_limit",
            ) from None
        if isinstance(exc, openai.APITimeoutError) and not connection_failed(exc):
            raise RetryableError("timed out connecting to the server", kind="timeout", url=_url(exc.request)) from None
        raise RetryableError(
            f"connection error: {_connection_text(exc)}", kind="connection", url=_url(exc.request)
        ) from None
    except httpx2.TransportError as exc:  # TimeoutException included
        if isinstance(exc, httpx2.TimeoutException) and not connection_failed(exc):
            raise RetryableError("timed out reading the stream", kind="timeout") from None
        if not complete():
            raise RetryableError(f"connection lost mid-stream: {exc}", kind="connection") from None
    except (AttemptError, TimeoutError):
        raise
    except Exception as exc:  # a bug, or an error type nobody expected: fail this item, not the run
        raise FatalRequestError(f"unexpected error: {exc!r}", kind="unexpected") from exc


def connection_failed(exc: BaseException) -> bool:
    """Whether a "timeout" was really a failed connection, judged by its cause.

    openai's vendored aiohttp transport maps every ``aiohttp.ClientConnectionError`` to httpx's
    ``ConnectTimeout``: a refused connection, a failed DNS lookup and a server that hung up all
    arrive labelled as a timeout.  The aiohttp exception is kept as the cause; only a real timeout
    there (aiohttp's are ``TimeoutError`` subclasses) is one.
    """
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, TimeoutError):
            return False
        if isinstance(cause, ConnectionError) or _is_aiohttp_connection_error(cause):
            return True
        cause = cause.__cause__
    return False


def _connection_text(exc: BaseException) -> str:
    """What went wrong connecting, in the words of the cause.  aiohttp's connector errors read
    "Cannot connect to host H:P ssl:default [...]", where "ssl:default" names a setting, not a TLS
    failure: the OS error under them says it plainly (its TLS errors keep their own text)."""
    aiohttp = sys.modules.get("aiohttp")
    cause = exc.__cause__
    while cause is not None:
        if (
            aiohttp is not None
            and isinstance(cause, aiohttp.ClientConnectorError)
            and not isinstance(cause, aiohttp.ClientSSLError | aiohttp.ClientConnectorCertificateError)
        ):
            error = cause.os_error
            return f"cannot connect to {cause.host}:{cause.port}: {error.strerror or error}"
        cause = cause.__cause__
    return str(exc.__cause__ or exc)


def _is_aiohttp_connection_error(exc: BaseException) -> bool:
    aiohttp = sys.modules.get("aiohttp")  # loaded by the aiohttp transport: no import on the httpx one
    return aiohttp is not None and isinstance(exc, aiohttp.ClientConnectionError)


def _out_of_descriptors(exc: BaseException) -> bool:
    """Whether an error was caused, at any depth, by running out of file descriptors (EMFILE, ENFILE)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno in (errno.EMFILE, errno.ENFILE):
            return True
        cause = cause.__cause__ or cause.__context__
    return False
