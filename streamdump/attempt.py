"""One attempt at one item: open the stream, write its text into a part file, finish.

Every way an attempt can fail ends here as an ``AttemptError`` (see ``errors``), and the part
file is always closed (renamed to its final name only after a finish_reason), also on
cancellation.  The response is always closed by ``with_streaming_response``'s context manager.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2
import openai

from . import _constants as C
from .cleanup import run_cleanup
from .errors import (
    AttemptError,
    AttemptTimeoutError,
    FatalRequestError,
    IncompleteStreamError,
    RetryableError,
    StallError,
)
from .output import OutputWriter, PartFile
from .retry import is_retried_status, parse_retry_after
from .sse import EventDecoder, StreamState, parse_event

if TYPE_CHECKING:
    from .jobs import Job


@dataclass(frozen=True, slots=True)
class AttemptSettings:
    idle_timeout: float = C.IDLE_TIMEOUT
    attempt_timeout: float = C.ATTEMPT_TIMEOUT
    include_usage: bool = True


@dataclass(slots=True)
class AttemptOutcome:
    """What a finished attempt produced (also filled in as far as it got when one fails)."""

    state: StreamState
    part: PartFile | None = None
    ttft: float | None = None
    headers: dict[str, str] | None = None

    @property
    def chars(self) -> int:
        return self.part.chars if self.part is not None else 0


class Watchdog:
    """Ends an attempt that goes ``idle`` seconds without a data event, or runs past ``total``.

    A lazy timer: the hot path only stores a timestamp (``touch``); the timer wakes at the
    earliest moment a stall could be due, and re-arms itself if data came meanwhile.
    """

    __slots__ = ("_deadline", "_handle", "_idle", "_loop", "_scope", "fired", "last")

    def __init__(self, scope: asyncio.Timeout, idle: float, total: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._scope = scope
        now = self._loop.time()
        self._idle = idle
        self._deadline = now + total
        self.last = now
        self.fired: str | None = None
        self._handle = self._loop.call_at(min(now + idle, self._deadline), self._check)

    def touch(self) -> None:
        self.last = self._loop.time()

    def _check(self) -> None:
        now = self._loop.time()
        due = self.last + self._idle
        if now >= self._deadline or now >= due:
            self.fired = "timeout" if now >= self._deadline else "stall"
            self._scope.reschedule(now)
        else:
            self._handle = self._loop.call_at(min(due, self._deadline), self._check)

    def cancel(self) -> None:
        self._handle.cancel()


def _status_error(exc: openai.APIStatusError) -> AttemptError:
    status = exc.status_code
    message = f"HTTP {status}: {_server_message(exc)}"
    if is_retried_status(status):
        retry_after = parse_retry_after(exc.response.headers, now=time.time())
        return RetryableError(message, status=status, retry_after=retry_after, kind=f"http_{status}")
    return FatalRequestError(message, status=status, kind=f"http_{status}")


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return exc.message


async def _close_part(writer: OutputWriter, part: PartFile, *, complete: bool) -> None:
    """Close a part file even while being cancelled (see ``cleanup``)."""
    await run_cleanup(writer.finish(part, complete=complete))


async def run_attempt(
    client: openai.AsyncOpenAI,
    job: Job,
    final: Path,
    writer: OutputWriter,
    settings: AttemptSettings,
    outcome: AttemptOutcome,
) -> None:
    """Stream one attempt into ``final``'s part file; raises AttemptError when it fails.

    ``outcome`` is filled in as the attempt goes, so the caller knows how far a failed one got.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    state = outcome.state
    extra: dict[str, Any] = {"stream": True}
    if settings.include_usage:
        extra["stream_options"] = {"include_usage": True}
    try:
        try:
            async with asyncio.timeout(None) as scope:
                watchdog = Watchdog(scope, settings.idle_timeout, settings.attempt_timeout)
                try:
                    await _stream(client, job, final, writer, extra, watchdog, outcome, started)
                finally:
                    watchdog.cancel()
        except TimeoutError:
            if watchdog.fired == "stall":
                raise StallError(f"no data for {settings.idle_timeout:g} s (stalled)", kind="stall") from None
            raise AttemptTimeoutError(
                f"the attempt ran past --timeout {settings.attempt_timeout:g} s", kind="timeout"
            ) from None
        except openai.APIStatusError as exc:
            raise _status_error(exc) from None
        except openai.APITimeoutError:
            raise RetryableError("timed out connecting to the server", kind="timeout") from None
        except openai.APIConnectionError as exc:
            raise RetryableError(f"connection error: {exc.__cause__ or exc}", kind="connection") from None
        except httpx2.TimeoutException:
            raise RetryableError("timed out reading the stream", kind="timeout") from None
        except httpx2.TransportError as exc:
            # After a finish_reason the answer is complete; only the epilogue (usage, [DONE]) was lost.
            if state.finish_reason is None:
                raise RetryableError(f"connection lost mid-stream: {exc}", kind="connection") from None
        complete = state.finish_reason is not None
        if outcome.part is not None:
            await _close_part(writer, outcome.part, complete=complete)
        if not complete:
            raise IncompleteStreamError("the stream ended without a finish_reason", kind="incomplete")
    finally:
        if outcome.part is not None and not outcome.part.closing:
            await _close_part(writer, outcome.part, complete=False)


async def _stream(
    client: openai.AsyncOpenAI,
    job: Job,
    final: Path,
    writer: OutputWriter,
    extra: dict[str, Any],
    watchdog: Watchdog,
    outcome: AttemptOutcome,
    started: float,
) -> None:
    loop = asyncio.get_running_loop()
    state = outcome.state
    # The body goes as extra_body, which openai sends as it is.  Passed as typed parameters, it would
    # be walked by openai's transform against the request's TypedDicts (about 0.4 ms a request,
    # a fifth of a short request's CPU) to change nothing: jobs.py has checked this JSON already, and
    # the chat parameters have no aliases.  create() requires model and messages; extra_body's win.
    body = {**job.body(), **extra}
    async with client.chat.completions.with_streaming_response.create(
        model=job.model, messages=(), stream=True, extra_body=body
    ) as response:
        outcome.headers = dict(response.headers)
        part = outcome.part = writer.open(final)
        decoder = EventDecoder()
        async for data in response.http_response.aiter_bytes():
            events = decoder.feed(data)
            if not events:
                continue
            watchdog.touch()
            for event, payload in events:
                text = parse_event(payload, state, event)
                if text:
                    if outcome.ttft is None:
                        outcome.ttft = loop.time() - started
                    writer.write(part, text)
        for event, payload in decoder.flush():
            text = parse_event(payload, state, event)
            if text:
                writer.write(part, text)
