"""One attempt at one item: open the stream (through its wire format), write its text into part
files, finish.

Every way an attempt can fail ends here as an ``AttemptError`` (see ``errors``), and the part
files (see ``partset``) are always closed (renamed to their final names only after every choice
has a finish_reason), also on cancellation.  The response is always closed by
``with_streaming_response``'s context manager.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import _constants as C
from .choices import ANSWER
from .cleanup import run_cleanup
from .errors import (
    AttemptTimeoutError,
    IncompleteStreamError,
    InvalidOutputError,
    MissingChoicesError,
    StallError,
)
from .layout import Layout
from .output import OutputWriter
from .partset import PartSet
from .schema import AnswerCheck, ChoiceAnswer, first_invalid
from .sse import EventDecoder, StreamState
from .transport import body_chunks, mapped_errors

if TYPE_CHECKING:
    import openai

    from .jobs import Job


@dataclass(frozen=True, slots=True)
class AttemptSettings:
    idle_timeout: float = C.IDLE_TIMEOUT
    attempt_timeout: float = C.ATTEMPT_TIMEOUT
    keep_reasoning: bool = True  # --no-reasoning drops reasoning text instead of writing it


@dataclass(slots=True)
class AttemptOutcome:
    """What a finished attempt produced (also filled in as far as it got when one fails)."""

    state: StreamState
    files: PartSet | None = None
    ttft: float | None = None
    headers: dict[str, str] | None = None

    @property
    def chars(self) -> int:
        """Characters of answer text, every choice counted."""
        return self.files.chars(ANSWER) if self.files is not None else 0

    @property
    def received(self) -> int:
        """Characters of text of any kind: answers, reasoning, refusals."""
        return self.files.received if self.files is not None else 0


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


async def _close_files(files: PartSet, *, complete: bool) -> None:
    """Close the part files even while being cancelled (see ``cleanup``)."""
    await run_cleanup(files.close(complete=complete))


async def run_attempt(
    client: openai.AsyncOpenAI,
    job: Job,
    layout: Layout,
    writer: OutputWriter,
    settings: AttemptSettings,
    outcome: AttemptOutcome,
    *,
    include_usage: bool = True,
    check: AnswerCheck | None = None,
) -> None:
    """Stream one attempt into the part files of ``layout``; raises AttemptError when it fails.

    ``outcome`` is filled in as the attempt goes, so the caller knows how far a failed one got.
    With a ``check``, the files are renamed only when every choice's answer passes it; otherwise
    they stay part files and ``InvalidOutputError`` says what is wrong.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    state = outcome.state
    extra = job.wire.stream_options(include_usage)
    try:
        try:
            with mapped_errors(complete=lambda: state.choices.complete):
                async with asyncio.timeout(None) as scope:
                    watchdog = Watchdog(scope, settings.idle_timeout, settings.attempt_timeout)
                    try:
                        await _stream(client, job, layout, writer, settings, extra, watchdog, outcome, started)
                    finally:
                        watchdog.cancel()
        except TimeoutError:
            if state.choices.complete:
                pass  # every choice had finished; the server only failed to close (usage, [DONE] lost)
            elif watchdog.fired == "stall":
                raise StallError(f"no data for {settings.idle_timeout:g} s (stalled)", kind="stall") from None
            else:
                raise AttemptTimeoutError(
                    f"the attempt ran past --timeout {settings.attempt_timeout:g} s", kind="timeout"
                ) from None
        complete = state.choices.complete
        if complete and check is not None and outcome.files is not None:
            invalid = await _invalid_answer(check, outcome.files, layout)
            if invalid is not None:
                raise invalid  # the part files are kept, as for any failed attempt (below)
        if outcome.files is not None:
            await _close_files(outcome.files, complete=complete)
        if not complete:
            choices = state.choices
            missing = choices.missing
            unfinished = [index for index in choices.indices if index not in choices.finished]
            if choices.finished and (missing or state.ended):
                # The server ended the stream on purpose with choices left unfinished (never sent,
                # or sent without a finish_reason, as LiteLLM does for n > 1): asking again cannot help.
                raise MissingChoicesError(
                    f"asked for n={layout.n} choices, the stream finished {len(choices.finished)} of them "
                    f"(choice {', '.join(str(i + 1) for i in unfinished)} never finished: does the server support n?)",
                    kind="missing_choices",
                )
            if state.chunks == 0:
                raise IncompleteStreamError(
                    "the server ended the stream without sending a single event (llama.cpp does this for a "
                    "prompt longer than its context)",
                    kind="incomplete",
                )
            raise IncompleteStreamError("the stream ended without a finish_reason", kind="incomplete")
    finally:
        if outcome.files is not None and not outcome.files.closed:
            await _close_files(outcome.files, complete=False)


async def _invalid_answer(check: AnswerCheck, files: PartSet, layout: Layout) -> InvalidOutputError | None:
    """The first choice whose answer fails ``check`` (refusals and tool calls are not answers)."""
    texts = await files.answer_texts()
    choices = files.choices
    answers = [
        ChoiceAnswer(
            index,
            texts.get(index, ""),
            choices.finished.get(index),
            checked=index not in choices.refused and not choices.tool_calls(index),
        )
        for index in choices.indices
    ]
    found = first_invalid(check, answers)
    if found is None:
        return None
    index, problem = found
    return InvalidOutputError(f"choice {index + 1}: {problem}" if layout.n > 1 else problem, choice=index)


async def _stream(
    client: openai.AsyncOpenAI,
    job: Job,
    layout: Layout,
    writer: OutputWriter,
    settings: AttemptSettings,
    extra: dict[str, Any],
    watchdog: Watchdog,
    outcome: AttemptOutcome,
    started: float,
) -> None:
    loop = asyncio.get_running_loop()
    state = outcome.state
    wire = job.wire
    parse = wire.parse_event
    body = {**job.body(), **extra}

    def first_text() -> None:  # reasoning, refusals, other choices: the first text of any kind
        if outcome.ttft is None:
            outcome.ttft = loop.time() - started

    async with wire.open(client, job.model, body) as response:
        outcome.headers = dict(response.headers)
        files = outcome.files = PartSet(writer, layout, keep_reasoning=settings.keep_reasoning, on_text=first_text)
        state.choices = files.choices
        part = files.first
        decoder = EventDecoder()
        async for data in body_chunks(response.http_response):
            events = decoder.feed(data)
            if not events:
                continue
            watchdog.touch()
            for event, payload in events:
                text = parse(payload, state, event)
                if text:
                    if outcome.ttft is None:
                        outcome.ttft = loop.time() - started
                    writer.write(part, text)
            if state.ended:
                return  # the stream's last word: waiting for the server to close gains nothing
        for event, payload in decoder.flush():
            text = parse(payload, state, event)
            if text:
                writer.write(part, text)
