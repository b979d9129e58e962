"""What every wire format module (``chat``, ``responses``, ``completions``) gives the server. Pure.

A format turns one request into the events of its stream (or into one JSON answer), given the
fault that hits it. The server does the rest, the same for every format: HTTP, pacing, hang-ups,
and the faults that break the transport (drop, stall, malformed, truncate, eof, split-utf8,
linger). A fault that changes what the stream says (content-filter, sse-error, failed) cuts the
format's own events: ``Generation.cut`` says after how many pieces.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .replies import Style
from .script import Fault
from .state import SimConfig

CUTS = frozenset({"content-filter", "sse-error", "failed"})  # faults that change the events themselves


@dataclass(frozen=True, slots=True)
class Event:
    """One write of a stream. A ``piece`` (a delta of text, reasoning, refusal or tool arguments)
    is what a fault's ``after`` counts and what the pace spaces out; ``linger`` marks where the
    linger fault waits (after the last finish, before anything else)."""

    data: bytes
    piece: bool = False
    linger: bool = False


LINGER = Event(b"", linger=True)
DONE = Event(b"data: [DONE]\n\n")


def data_event(payload: object) -> bytes:
    """A data-only server-sent event."""
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


@dataclass(frozen=True, slots=True)
class Problem:
    """A request the format refuses with 400, worded as OpenAI words it."""

    message: str
    param: str | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Generation:
    """One request to answer, with everything its answer depends on."""

    body: dict[str, Any]
    prompt: str
    fault: Fault | None
    config: SimConfig
    number: int  # the request's number in this simulator's life (for ids)
    created: int  # unix time

    @property
    def cut(self) -> int | None:
        """After how many pieces a content-filter, sse-error or failed fault ends the stream."""
        if self.fault is not None and self.fault.kind in CUTS:
            return self.fault.after
        return None

    @property
    def model(self) -> str:
        model = self.body.get("model")
        return model if isinstance(model, str) and model else self.config.model

    def id(self, prefix: str) -> str:
        """A stable id for this request: ``prefix`` and 24 hex digits."""
        digest = hashlib.sha256(f"{self.config.seed}\0{self.number}\0{self.prompt}".encode("utf-8", "surrogatepass"))
        return prefix + digest.hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Format:
    """A wire format: the text its faults match on, what it refuses, its stream, its whole answer."""

    name: str
    prompt: Callable[[dict[str, Any]], str]
    stream: Callable[[Generation], list[Event]]
    complete: Callable[[Generation], dict[str, Any]]
    check: Callable[[dict[str, Any]], Problem | None] = lambda body: None


def style_of(generation: Generation, *, reasoning: bool = True) -> Style:
    """How this request is answered, apart from the request itself: the configuration and the fault."""
    config, fault = generation.config, generation.fault
    return Style(
        length=config.length,
        seed=config.seed,
        reasoning=config.reasoning if reasoning else 0,
        reasoning_field=config.reasoning_field,
        refuse=fault is not None and fault.kind == "refuse",
        fault=None if fault is None else fault.kind,  # json, invalid-json, off-schema shape the answer
    )


def one_choice(generation: Generation) -> bool:
    """The single-choice fault: answer one choice, whatever ``n`` asks."""
    return generation.fault is not None and generation.fault.kind == "single-choice"
