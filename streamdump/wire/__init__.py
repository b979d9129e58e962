"""The wire formats streamdump speaks: one module each, behind one small interface.

    chat         POST /chat/completions   messages in, choices[i].delta out     (wire/chat.py)
    responses    POST /responses          input/instructions in, typed events   (wire/responses.py)
    completions  POST /completions        prompt in, choices[i].text out        (wire/completions.py)

A format decides, for one job: the request fields its input fills (``from_prompt``,
``from_messages``, ``from_body`` for a Batch API line), how its prompt is counted, how the stream
is opened with ``AsyncOpenAI``, how each SSE event becomes text in the item's files
(``parse_event``: choice 0's answer text is returned, everything else goes to ``state.choices``),
when the stream is complete and why (``Choices.finish``), what usage and ids it reported (kept in
``StreamState`` under our own names: prompt_tokens, completion_tokens, reasoning_tokens), whether
an error means "drop an option and ask again" (``rejects_option``), and what its Batch API result
body looks like (``batch_body``).  SSE framing (``sse.EventDecoder``) is shared.

The runner, the item's life, the manifest and the results writer know no format's JSON keys:
they hold a ``WireFormat`` and ask it.  A fourth format is a new module here, one line in
``FORMATS``, and a simulator route.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import openai

    from ..errors import AttemptError
    from ..sse import StreamState
    from ..tokens import Counter


class WireFormat(Protocol):
    name: str  # what --api and the manifest's "api" say
    batch_url: str  # the Batch API "url" of its lines
    input_fields: frozenset[str]  # request fields the input fills; a line's params may not set them
    limit_param: str  # the parameter --max-tokens fills
    limit_params: tuple[str, ...]  # every parameter that bounds one choice's output, first wins

    def from_prompt(self, prompt: str, system: str | None) -> dict[str, Any]:
        """The input fields for a plain prompt (and a system message). Raises LineError."""
        ...

    def from_messages(self, messages: list[dict[str, Any]], system: str | None) -> dict[str, Any]:
        """The input fields for chat-style messages (checked already); ``system`` is the default
        system message for messages that have none. Raises LineError."""
        ...

    def from_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """The input fields of a Batch API line's body. Raises LineError."""
        ...

    def check_params(self, params: dict[str, Any]) -> None:
        """Refuse parameters the format cannot take (raises LineError)."""
        ...

    def count_prompt(self, counter: Counter, request: Mapping[str, Any]) -> int:
        """Prompt tokens of the input fields, as well as tiktoken can tell."""
        ...

    def open(self, client: openai.AsyncOpenAI, model: str, body: dict[str, Any]) -> AbstractAsyncContextManager[Any]:
        """Open the stream (``with_streaming_response``); ``body`` is sent as it is."""
        ...

    def stream_options(self, include_usage: bool) -> dict[str, Any]:
        """What streamdump adds to the body to stream (``stream`` and, where known, usage)."""
        ...

    def parse_event(self, data: bytes, state: StreamState, event: str | None) -> str | None:
        """Apply one SSE event to ``state``; return choice 0's answer text, if any."""
        ...

    def rejects_option(self, exc: AttemptError) -> bool:
        """The error says the server does not know an option streamdump added: ask again without it."""
        ...

    def batch_body(
        self, entry: Mapping[str, Any], outputs: list[dict[str, Any]], *, created: int, token: str
    ) -> dict[str, Any]:
        """The Batch API result body for a finished item: its manifest entry, and each choice's output
        (``index``, ``content``, ``refusal``, ``tool_calls``, ``finish_reason``) read from its files;
        ``token`` makes an id when the server gave none."""
        ...


def _formats() -> dict[str, WireFormat]:
    from . import chat, completions, responses

    return {f.name: f for f in (chat.FORMAT, responses.FORMAT, completions.FORMAT)}


FORMATS: dict[str, WireFormat] = _formats()
NAMES = tuple(FORMATS)
BY_BATCH_URL: dict[str, WireFormat] = {f.batch_url: f for f in FORMATS.values()}
DEFAULT = "chat"


def wire_for(name: str) -> WireFormat:
    """The format called ``name`` (``chat``, ``responses``, ``completions``). Raises KeyError."""
    return FORMATS[name]
