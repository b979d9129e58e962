"""Server-sent events, for every wire format: bytes in, events out; and the state of one stream. Pure.

Each wire format (``wire/``) turns the events into text.  We parse the SSE lines ourselves
instead of iterating openai's typed chunks: building a pydantic
object per chunk costs several times what the rest of the pipeline does (see benchmarks/).
Bytes stay bytes until a whole line is in, so a UTF-8 character split across network reads is
never cut.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import _constants as C
from .choices import Choices
from .errors import OversizedEventError


class LineSplitter:
    """Splits a byte stream into lines (``\\n``, ``\\r\\n`` or ``\\r``), keeping partial lines.

    A partial line is kept as the pieces it came in, joined once when its end arrives (joining at
    every read would copy a long line over and over); one longer than ``limit`` bytes raises
    OversizedEventError.
    """

    __slots__ = ("_held", "_limit", "_pieces")

    def __init__(self, limit: int = C.MAX_EVENT_BYTES) -> None:
        self._pieces: list[bytes] = []
        self._held = 0
        self._limit = limit

    def feed(self, data: bytes) -> list[bytes]:
        if self._pieces:
            if b"\n" not in data and b"\r" not in data and not self._pieces[-1].endswith(b"\r"):
                self._hold(data)
                return []
            data = b"".join([*self._pieces, data])
            self._pieces, self._held = [], 0
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
            # A lone trailing \r may be the first half of \r\n: keep it for the next read.
            keep_cr = data.endswith(b"\r")
            if keep_cr:
                data = data[:-1]
            data = data.replace(b"\r", b"\n")
            if keep_cr:
                data += b"\r"
        lines = data.split(b"\n")
        rest = lines.pop()
        if rest:
            self._hold(rest)
        return lines

    def _hold(self, piece: bytes) -> None:
        self._pieces.append(piece)
        self._held += len(piece)
        if self._held > self._limit:
            raise _oversized("line")

    def flush(self) -> list[bytes]:
        rest = b"".join(self._pieces).rstrip(b"\r")
        self._pieces, self._held = [], 0
        return [rest] if rest else []


def _oversized(what: str) -> OversizedEventError:
    return OversizedEventError(
        f"the server sent an SSE {what} of more than {C.MAX_EVENT_BYTES // (1024 * 1024)} MiB (no end in sight)",
        kind="oversized",
    )


class EventDecoder:
    """SSE framing: bytes in, complete events out as ``(event name or None, data)``.

    Comment lines (``: ping``) and unknown fields are dropped; data lines of one event are joined
    with ``\n`` as the SSE spec says.  An event whose data passes ``limit`` bytes raises
    OversizedEventError.
    """

    __slots__ = ("_data", "_event", "_limit", "_lines", "_size", "comments")

    def __init__(self, limit: int = C.MAX_EVENT_BYTES) -> None:
        self._lines = LineSplitter(limit)
        self._data: list[bytes] = []
        self._size = 0
        self._limit = limit
        self._event: str | None = None
        self.comments = 0

    def feed(self, data: bytes) -> list[tuple[str | None, bytes]]:
        return self._decode(self._lines.feed(data))

    def flush(self) -> list[tuple[str | None, bytes]]:
        return self._decode([*self._lines.flush(), b""])

    def _decode(self, lines: list[bytes]) -> list[tuple[str | None, bytes]]:
        events: list[tuple[str | None, bytes]] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append((self._event, b"\n".join(self._data)))
                self._data, self._event, self._size = [], None, 0
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
                self._size += len(value) + 1
                if self._size > self._limit:
                    raise _oversized("event")
            elif line.startswith(b":"):
                self.comments += 1
            elif line.startswith(b"event:"):
                self._event = line[6:].strip().decode("utf-8", "replace")
        return events


@dataclass(slots=True)
class StreamState:
    """What one attempt's stream has said so far."""

    finish_reason: str | None = None
    done: bool = False  # saw data: [DONE]
    ended: bool = False  # the stream said its last word ([DONE], or a Responses terminal event)
    usage: dict[str, Any] | None = None
    model: str | None = None
    response_id: str | None = None
    chunks: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    choices: Choices = field(default_factory=Choices)  # everything but choice 0's plain content


def error_message(error: object) -> str:
    if isinstance(error, dict):
        message = error.get("message")
        if isinstance(message, str) and message:
            return message
    if isinstance(error, str) and error:
        return error
    return "the server sent an error event mid-stream"


def loads(data: bytes) -> Any:
    """orjson (a fifth of json's time on a chunk); json for what orjson refuses and json takes: a lone
    surrogate escape (a pair split across two chunks), NaN, integers past 64 bits."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
