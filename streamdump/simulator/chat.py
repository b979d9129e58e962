"""``POST /v1/chat/completions``: chat.completion.chunk events (role chunk, deltas interleaved by
choice, a finish chunk per choice, the usage chunk when ``stream_options.include_usage`` asks,
``[DONE]``), or one chat.completion object when not streamed. What the deltas say is ``replies``'."""

from __future__ import annotations

import json
from typing import Any

from .formats import DONE, LINGER, Event, Format, Generation, data_event, one_choice, style_of
from .replies import Choice, interleave, reply
from .script import count_tokens_roughly

SSE_ERROR = {"message": "simulated mid-stream error", "type": "server_error"}


def prompt_of(body: dict[str, Any]) -> str:
    """The text faults match on: the last user message."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return json.dumps(content, ensure_ascii=False)
    return ""


def _choices(generation: Generation) -> list[Choice]:
    body = {**generation.body, "n": 1} if one_choice(generation) else generation.body
    return reply(generation.prompt, body, style_of(generation))


def usage(generation: Generation, choices: list[Choice]) -> dict[str, Any]:
    """Usage of the whole request, every choice counted once."""
    body = generation.body
    prompt_tokens = sum(
        count_tokens_roughly(str(m.get("content") or "")) for m in body.get("messages") or [] if isinstance(m, dict)
    )
    completion = sum(choice.tokens for choice in choices)
    reasoning = sum(len(choice.reasoning) for choice in choices)
    if generation.config.zero_usage:
        prompt_tokens = completion = reasoning = 0
    result: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
    }
    if reasoning or (generation.config.zero_usage and generation.config.reasoning):
        result["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return result


def error_event(generation: Generation) -> bytes:
    """The mid-stream error of an sse-error or failed fault (with its ``code`` when it has one)."""
    fault = generation.fault
    error: dict[str, Any] = dict(SSE_ERROR)
    if fault is not None and (fault.code or fault.kind == "failed"):
        error["code"] = fault.code or "server_error"
    return data_event({"error": error})


def stream(generation: Generation) -> list[Event]:
    config = generation.config
    choices = _choices(generation)
    finishes = {choice.index: choice.finish for choice in choices}
    cid = f"chatcmpl-sim-{generation.number}"

    def chunk(
        delta: dict[str, Any] | None,
        finish_reason: str | None = None,
        usage: dict[str, Any] | None = None,
        index: int = 0,
    ) -> bytes:
        payload: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": generation.created,
            "model": generation.model,
            "choices": [] if delta is None else [{"index": index, "delta": delta, "finish_reason": finish_reason}],
        }
        if usage is not None:
            payload["usage"] = usage
        return data_event(payload)

    events = [Event(chunk({"role": "assistant", "content": ""}, index=choice.index)) for choice in choices]
    cut = generation.cut
    for position, (index, delta) in enumerate(interleave(choices)):
        if position == cut:
            if generation.fault is not None and generation.fault.kind == "content-filter":
                finishes = dict.fromkeys(finishes, "content_filter")
                break
            return [*events, Event(error_event(generation))]
        events.append(Event(chunk(delta, index=index), piece=True))
    if generation.fault is not None and generation.fault.kind == "lost-finish":
        finishes = {index: finish for index, finish in finishes.items() if index == 0}  # as LiteLLM with n > 1
    events += [Event(chunk({}, finish, index=index)) for index, finish in finishes.items()]
    events.append(LINGER)
    options = generation.body.get("stream_options")
    if config.usage and isinstance(options, dict) and options.get("include_usage"):
        events.append(Event(chunk(None, usage=usage(generation, choices))))
    events.append(DONE)
    return events


def complete(generation: Generation) -> dict[str, Any]:
    choices = _choices(generation)
    reasoning_field = generation.config.reasoning_field
    return {
        "id": "chatcmpl-sim",
        "object": "chat.completion",
        "created": generation.created,
        "model": generation.model,
        "choices": [
            {"index": choice.index, "message": choice.message(reasoning_field), "finish_reason": choice.finish}
            for choice in choices
        ],
        "usage": usage(generation, choices),
    }


FORMAT = Format(name="chat", prompt=prompt_of, stream=stream, complete=complete)
