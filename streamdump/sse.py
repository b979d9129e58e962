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

from .choices import Choices


class LineSplitter:
    """Splits a byte stream into lines (``\\n``, ``\\r\\n`` or ``\\r``), keeping partial lines."""

    __slots__ = ("_rest",)

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, data: bytes) -> list[bytes]:
        if self._rest:
            data = self._rest + data
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
        self._rest = lines.pop()
        return lines

    def flush(self) -> list[bytes]:
        rest, self._rest = self._rest.rstrip(b"\r"), b""
        return [rest] if rest else []


class EventDecoder:
    """SSE framing: bytes in, complete events out as ``(event name or None, data)``.

    Comment lines (``: ping``) and unknown fields are dropped; data lines of one event are joined
    with ``\n`` as the SSE spec says.
    """

    __slots__ = ("_data", "_event", "_lines", "comments")

    def __init__(self) -> None:
        self._lines = LineSplitter()
        self._data: list[bytes] = []
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
                self._data, self._event = [], None
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
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
