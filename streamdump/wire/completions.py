"""Text completions: ``prompt`` in, ``choices[i].text`` chunks out, ``[DONE]`` at the end.

How base models are run in bulk on vLLM and llama.cpp.  Streams like chat: ``n > 1`` into numbered
files, usage with ``stream_options.include_usage``.  There is no system message and no chat
messages: a line with either is an input error.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from ..choices import ANSWER
from ..errors import AttemptError, LineError
from ..sse import StreamState
from .chat import FORMAT as CHAT
from .chat import decode_chunk, parse_chunk_header, usage_body

if TYPE_CHECKING:
    import openai

    from ..tokens import Counter

NEEDS_CHAT = "needs --api chat or responses"


class Completions:
    name = "completions"
    batch_url = "/v1/completions"
    input_fields: frozenset[str] = frozenset({"prompt"})
    limit_param = "max_tokens"
    limit_params: tuple[str, ...] = ("max_tokens",)

    def from_prompt(self, prompt: str, system: str | None) -> dict[str, Any]:
        if system:
            raise LineError(f"a system message {NEEDS_CHAT} (text completions have none)")
        return {"prompt": prompt}

    def from_messages(self, messages: list[dict[str, Any]], system: str | None) -> dict[str, Any]:
        raise LineError(f'"messages" {NEEDS_CHAT}; a text completion takes "prompt"')

    def from_body(self, body: dict[str, Any]) -> dict[str, Any]:
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise LineError('"prompt" must be a non-empty string')
        return {"prompt": prompt}

    def check_params(self, params: dict[str, Any]) -> None:
        if "messages" in params or "input" in params:
            raise LineError(f'"params" may not set the input; give "prompt" on the line ({NEEDS_CHAT} for messages)')

    def count_prompt(self, counter: Counter, request: Mapping[str, Any]) -> int:
        return counter.text(request["prompt"])

    def open(self, client: openai.AsyncOpenAI, model: str, body: dict[str, Any]) -> AbstractAsyncContextManager[Any]:
        return client.completions.with_streaming_response.create(model=model, prompt="", stream=True, extra_body=body)

    def stream_options(self, include_usage: bool) -> dict[str, Any]:
        return CHAT.stream_options(include_usage)

    def parse_event(self, data: bytes, state: StreamState, event: str | None) -> str | None:
        chunk = decode_chunk(data)
        if chunk is None:
            state.done = state.ended = True
            return None
        parse_chunk_header(chunk, state, event)
        text = None
        choices = state.choices
        for choice in chunk.get("choices") or ():
            index = choice.get("index") or 0
            piece = choice.get("text")
            if piece and isinstance(piece, str):
                if index:
                    choices.seen.add(index)
                    choices.sink(ANSWER, index, piece)
                else:
                    text = piece if text is None else text + piece
            reason = choice.get("finish_reason")
            if reason:
                choices.finish(index, reason)
                if not index:
                    state.finish_reason = reason
        return text

    def rejects_option(self, exc: AttemptError) -> bool:
        return CHAT.rejects_option(exc)

    def batch_body(
        self, entry: Mapping[str, Any], outputs: list[dict[str, Any]], *, created: int, token: str
    ) -> dict[str, Any]:
        return {
            "id": entry.get("response_id") or f"cmpl-{token}",
            "object": "text_completion",
            "created": created,
            "model": entry.get("model"),
            "choices": [
                {
                    "index": output.get("index", 0),
                    "text": output.get("content") or "",
                    "logprobs": None,
                    "finish_reason": output.get("finish_reason"),
                }
                for output in outputs
            ],
            "usage": usage_body(entry),
        }


FORMAT = Completions()
