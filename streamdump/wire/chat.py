"""Chat completions: ``messages`` in, ``choices[i].delta`` chunks out, ``[DONE]`` at the end.

The hot path is ``parse_event``: the common chunk (``content`` of choice 0 and nothing else) is
returned at once; every other delta goes to ``state.choices`` (see ``choices``).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from ..errors import AttemptError, LineError, MalformedChunkError, StreamEventError
from ..sse import StreamState, error_message, loads

if TYPE_CHECKING:
    import openai

    from ..tokens import Counter

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


def check_messages(messages: object) -> list[dict[str, Any]]:
    """Chat messages as a line gives them, checked. Raises LineError."""
    if not isinstance(messages, list) or not messages:
        raise LineError('"messages" must be a non-empty list')
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise LineError(f"{where} must be an object")
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise LineError(f"{where}.role must be one of {', '.join(sorted(ROLES))}, not {role!r}")
        content = message.get("content")
        if content is None and role not in ("assistant", "tool", "function"):
            raise LineError(f'{where} has no "content"')
        if content is not None and not isinstance(content, (str, list)):
            raise LineError(f"{where}.content must be a string or a list of parts")
    return messages


def chat_usage(usage: Mapping[str, Any]) -> dict[str, Any] | None:
    """Usage under our names, from the chat (and completions) usage object; None without counts."""
    completion = usage.get("completion_tokens")
    if not isinstance(completion, int):
        return None
    counts: dict[str, Any] = {"prompt_tokens": usage.get("prompt_tokens"), "completion_tokens": completion}
    details = usage.get("completion_tokens_details")
    if isinstance(details, dict) and isinstance(details.get("reasoning_tokens"), int):
        counts["reasoning_tokens"] = details["reasoning_tokens"]
    cached = usage.get("prompt_tokens_details")
    if isinstance(cached, dict) and isinstance(cached.get("cached_tokens"), int):
        counts["cached_tokens"] = cached["cached_tokens"]
    return counts


def parse_chunk_header(chunk: dict[str, Any], state: StreamState, event: str | None) -> None:
    """What every chat-like chunk may carry besides its choices: an error, the model and id, usage."""
    if chunk.get("error") or event == "error":
        error = chunk.get("error") or chunk
        code = error.get("code") if isinstance(error, dict) else None
        raise StreamEventError(
            error_message(error),
            status=code if isinstance(code, int) and not isinstance(code, bool) else None,
            kind="stream_error",
            code=code if isinstance(code, str) and code else None,
        )
    state.chunks += 1
    if state.model is None:
        state.model = chunk.get("model")
        state.response_id = chunk.get("id")
    usage = chunk.get("usage")
    if usage and isinstance(usage, dict):
        state.usage = chat_usage(usage)


def decode_chunk(data: bytes) -> dict[str, Any] | None:
    """One data payload as a JSON object; None for ``[DONE]``. Raises MalformedChunkError."""
    if data.startswith(b"[DONE]"):
        return None
    try:
        chunk = loads(data)
    except ValueError:
        shown = data[:80].decode("utf-8", "replace")
        raise MalformedChunkError(f"the server sent a data line that is not JSON: {shown!r}") from None
    if not isinstance(chunk, dict):
        raise MalformedChunkError("the server sent a data line that is not a JSON object")
    return chunk


def usage_body(entry: Mapping[str, Any]) -> dict[str, int]:
    usage = entry.get("usage") or {}
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class Chat:
    name = "chat"
    batch_url = "/v1/chat/completions"
    input_fields: frozenset[str] = frozenset({"messages"})
    limit_param = "max_tokens"
    limit_params: tuple[str, ...] = ("max_completion_tokens", "max_tokens")

    def from_prompt(self, prompt: str, system: str | None) -> dict[str, Any]:
        messages = [{"role": "user", "content": prompt}]
        if system:
            messages.insert(0, {"role": "system", "content": system})
        return {"messages": messages}

    def from_messages(self, messages: list[dict[str, Any]], system: str | None) -> dict[str, Any]:
        if system and not any(m["role"] in ("system", "developer") for m in messages):
            messages = [{"role": "system", "content": system}, *messages]
        return {"messages": messages}

    def from_body(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"messages": check_messages(body.get("messages"))}

    def check_params(self, params: dict[str, Any]) -> None:
        return None

    def count_prompt(self, counter: Counter, request: Mapping[str, Any]) -> int:
        return counter.messages(request["messages"])

    def open(self, client: openai.AsyncOpenAI, model: str, body: dict[str, Any]) -> AbstractAsyncContextManager[Any]:
        # The body goes as extra_body, which openai sends as it is.  Passed as typed parameters, it
        # would be walked by openai's transform against the request's TypedDicts (about 0.4 ms a
        # request, a fifth of a short request's CPU) to change nothing: jobs.py has checked this
        # JSON already.  create() requires model and messages; extra_body's win.
        return client.chat.completions.with_streaming_response.create(
            model=model, messages=(), stream=True, extra_body=body
        )

    def stream_options(self, include_usage: bool) -> dict[str, Any]:
        return {"stream": True, "stream_options": {"include_usage": True}} if include_usage else {"stream": True}

    def parse_event(self, data: bytes, state: StreamState, event: str | None) -> str | None:
        """Raises StreamEventError for an ``{"error": ...}`` event, MalformedChunkError for non-JSON."""
        chunk = decode_chunk(data)
        if chunk is None:
            state.done = state.ended = True
            return None
        parse_chunk_header(chunk, state, event)
        text = None
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta")
            if delta:
                content = delta.get("content")
                # The common chunk, {"content": "..."} of choice 0, costs no more than this test.
                if not (content and len(delta) == 1 and not choice.get("index")):
                    content = state.choices.delta(choice.get("index") or 0, delta)
                if content:
                    text = content if text is None else text + content
            reason = choice.get("finish_reason")
            if reason:
                index = choice.get("index") or 0
                state.choices.finish(index, reason)
                if not index:
                    state.finish_reason = reason
        return text

    def rejects_option(self, exc: AttemptError) -> bool:
        """A 400 that names stream_options: the server does not know the field (older vLLM, Azure...)."""
        message = str(exc)
        return exc.status == 400 and ("stream_options" in message or "include_usage" in message)

    def batch_body(
        self, entry: Mapping[str, Any], outputs: list[dict[str, Any]], *, created: int, token: str
    ) -> dict[str, Any]:
        return {
            "id": entry.get("response_id") or f"chatcmpl-{token}",
            "object": "chat.completion",
            "created": created,
            "model": entry.get("model"),
            "choices": [
                {
                    "index": output.get("index", 0),
                    "message": _message(output),
                    "logprobs": None,
                    "finish_reason": output.get("finish_reason"),
                }
                for output in outputs
            ],
            "usage": usage_body(entry),
            "system_fingerprint": None,
        }


def _message(output: Mapping[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": output.get("content"),
        "refusal": output.get("refusal"),
    }
    if output.get("tool_calls"):
        message["tool_calls"] = output["tool_calls"]
    return message


FORMAT = Chat()
