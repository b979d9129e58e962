"""Where the HTTP clients are built, and where their errors become ours.

This is the one place that knows which HTTP stack sits under ``AsyncOpenAI``.  Everything above
it sees ``AsyncOpenAI`` clients and our ``AttemptError`` tree: ``mapped_errors`` is the one table
from the transport's and openai's exceptions to ours (httpx's ``_transports/default.py`` maps its
transport's exceptions the same way, with one context manager).
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import time
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import TYPE_CHECKING

from . import _constants as C
from .apikey import redact
from .endpoint import public_url
from .errors import AttemptError, FatalRequestError, RetryableError
from .retry import is_retried_status, parse_retry_after

if TYPE_CHECKING:
    import openai

NO_KEY = "sk-no-key-needed"


def make_clients(
    base_url: str | None, api_key: str | None, *, concurrency: int, attempt_timeout: float
) -> list[openai.AsyncOpenAI]:
    """AsyncOpenAI clients with our retry policy (theirs is off), one per group of workers.

    The workers share them in groups of at most ``POOL_SIZE``, each client with its own connection
    pool, ``concurrency`` connections in all.  httpcore's pool examines every connection it holds
    (an idle one with a system call) each time a request starts or a response ends, so one pool of
    N connections costs O(N) per request: at -c 500 that was 40% of the client's CPU.  All pools
    share one TLS context (building one takes tens of milliseconds).
    """
    import httpx2
    import openai

    groups = math.ceil(concurrency / C.POOL_SIZE)
    size = math.ceil(concurrency / groups)
    limits = httpx2.Limits(max_connections=size, max_keepalive_connections=size)
    timeout = httpx2.Timeout(attempt_timeout, connect=C.CONNECT_TIMEOUT)
    tls = httpx2.create_ssl_context()
    return [
        openai.AsyncOpenAI(
            api_key=api_key or NO_KEY,
            base_url=base_url,
            max_retries=0,
            timeout=timeout,
            # No redirect is followed: it would re-send the prompt to a host the user never named.
            http_client=openai.DefaultAsyncHttpxClient(
                limits=limits, timeout=timeout, verify=tls, follow_redirects=False
            ),
        )
        for _ in range(groups)
    ]


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
    except openai.APITimeoutError as exc:
        raise RetryableError("timed out connecting to the server", kind="timeout", url=_url(exc.request)) from None
    except openai.APIConnectionError as exc:
        if _out_of_descriptors(exc):  # this machine's limit, not the server: no wrong endpoint
            raise RetryableError(
                "cannot open a connection: Too many open files (the limit on open files is reached; lower -c)",
                kind="fd_limit",
            ) from None
        raise RetryableError(
            f"connection error: {exc.__cause__ or exc}", kind="connection", url=_url(exc.request)
        ) from None
    except httpx2.TimeoutException:
        raise RetryableError("timed out reading the stream", kind="timeout") from None
    except httpx2.TransportError as exc:
        if not complete():
            raise RetryableError(f"connection lost mid-stream: {exc}", kind="connection") from None
    except (AttemptError, TimeoutError):
        raise
    except Exception as exc:  # a bug, or an error type nobody expected: fail this item, not the run
        raise FatalRequestError(f"unexpected error: {exc!r}", kind="unexpected") from exc


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
