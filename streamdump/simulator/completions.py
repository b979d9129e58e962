"""``POST /v1/completions``: text_completion chunks (``choices[i].text``, interleaved by index when
``n`` > 1, a finish chunk per choice, the usage chunk when ``stream_options.include_usage`` asks,
``[DONE]``), or one text_completion object when not streamed. ``max_tokens`` finishes with
``length``; a content-filter fault with ``content_filter``; sse-error and failed send an error
event. A base model has no reasoning, refusals or tools: those settings and faults change nothing.
A list of prompts is answered as the API does, ``n`` choices for each (index ``prompt * n + k``)."""

from __future__ import annotations

from typing import Any

from . import chat
from .formats import DONE, LINGER, Event, Format, Generation, Problem, data_event, one_choice
from .replies import Choice, Style, interleave, reply
from .script import count_tokens_roughly


def _prompts(body: dict[str, Any]) -> list[str] | None:
    given = body.get("prompt")
    if isinstance(given, str):
        return [given]
    if isinstance(given, list) and given and all(isinstance(text, str) for text in given):
        return given
    return None


def prompt_of(body: dict[str, Any]) -> str:
    """The text faults match on: the prompt (several, one a line)."""
    return "\n".join(_prompts(body) or [])


def check(body: dict[str, Any]) -> Problem | None:
    if "messages" in body:
        return Problem("Unrecognized request argument supplied: messages", param="messages")
    if "prompt" not in body:
        return Problem("Missing required parameter: 'prompt'.", param="prompt", code="missing_required_parameter")
    if _prompts(body) is None:
        message = "Invalid 'prompt': the simulator takes a string or a non-empty list of strings (no token arrays)."
        return Problem(message, param="prompt", code="invalid_type")
    return None


def _choices(generation: Generation) -> list[Choice]:
    body, config = generation.body, generation.config
    request = {"n": 1 if one_choice(generation) else body.get("n"), "max_tokens": body.get("max_tokens")}
    fault = None if generation.fault is None else generation.fault.kind  # the JSON faults shape the answer
    style = Style(length=config.length, seed=config.seed, fault=fault)  # no reasoning, no refusal
    choices = []
    for number, prompt in enumerate(_prompts(body) or [""]):
        made = reply(prompt, request, style)
        for choice in made:
            choice.index += number * len(made)
        choices += made
    return choices


def usage(generation: Generation, completion: int) -> dict[str, Any]:
    prompt_tokens = sum(count_tokens_roughly(text) for text in _prompts(generation.body) or [])
    if generation.config.zero_usage:
        prompt_tokens = completion = 0
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion, "total_tokens": prompt_tokens + completion}


def stream(generation: Generation) -> list[Event]:
    choices = _choices(generation)
    finishes = {choice.index: choice.finish for choice in choices}
    cid = f"cmpl-sim-{generation.number}"

    def chunk(choice_list: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        payload: dict[str, Any] = {
            "id": cid,
            "object": "text_completion",
            "created": generation.created,
            "model": generation.model,
            "choices": choice_list,
        }
        if usage is not None:
            payload["usage"] = usage
        return data_event(payload)

    def text(index: int, piece: str, finish: str | None = None) -> bytes:
        return chunk([{"index": index, "text": piece, "logprobs": None, "finish_reason": finish}])

    events: list[Event] = []
    cut = generation.cut
    for position, (index, delta) in enumerate(interleave(choices)):
        if position == cut:
            if generation.fault is not None and generation.fault.kind == "content-filter":
                finishes = dict.fromkeys(finishes, "content_filter")
                break
            return [*events, Event(chat.error_event(generation))]
        events.append(Event(text(index, delta["content"]), piece=True))
    events += [Event(text(index, "", finish)) for index, finish in finishes.items()]
    events.append(LINGER)
    options = generation.body.get("stream_options")
    if generation.config.usage and isinstance(options, dict) and options.get("include_usage"):
        sent = sum(event.piece for event in events)  # a content filter cuts the count too
        events.append(Event(chunk([], usage(generation, sent))))
    events.append(DONE)
    return events


def complete(generation: Generation) -> dict[str, Any]:
    choices = _choices(generation)
    return {
        "id": "cmpl-sim",
        "object": "text_completion",
        "created": generation.created,
        "model": generation.model,
        "choices": [
            {"index": c.index, "text": "".join(c.content), "logprobs": None, "finish_reason": c.finish} for c in choices
        ],
        "usage": usage(generation, sum(choice.tokens for choice in choices)),
    }


FORMAT = Format(name="completions", prompt=prompt_of, stream=stream, complete=complete, check=check)
