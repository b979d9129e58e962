"""A Batch API result body, read back into what each choice produced. Pure; no I/O.

The three bodies OpenAI's Batch output gives (``chat.completion``, ``response``,
``text_completion``) become one shape: per choice, the answer, reasoning and refusal text, the tool
calls as a streamed run assembles them, and the finish_reason; plus model, usage (under our names,
by the format's own reader in ``wire``) and id.  ``wire``'s formats build these bodies
(``batch_body``); this is the other direction, for ``batch collect``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..wire.chat import chat_usage
from ..wire.responses import responses_usage

REASONING_FIELDS = ("reasoning_content", "reasoning")
INCOMPLETE = {"max_output_tokens": "length", "content_filter": "content_filter"}


@dataclass(slots=True)
class Produced:
    index: int
    content: str = ""
    reasoning: str = ""
    refusal: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None


@dataclass(slots=True)
class Parsed:
    choices: list[Produced]
    model: str | None
    usage: dict[str, Any]
    response_id: str | None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def parse_body(api: str, body: dict[str, Any]) -> Parsed:
    """What a result body says. Raises ValueError when it is not the shape the API gives."""
    if api == "responses":
        return _response(body)
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ValueError("the result body has no choices")
    produced = []
    for choice in sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0):
        if not isinstance(choice, dict):
            raise ValueError("a choice is not an object")
        one = Produced(index=int(choice.get("index") or 0), finish_reason=choice.get("finish_reason"))
        if api == "completions":
            one.content = _text(choice.get("text"))
        else:
            message = choice.get("message") or {}
            one.content = _text(message.get("content"))
            one.reasoning = next((_text(message.get(f)) for f in REASONING_FIELDS if message.get(f)), "")
            one.refusal = _text(message.get("refusal"))
            one.tool_calls = list(message.get("tool_calls") or [])
        produced.append(one)
    return Parsed(produced, body.get("model"), _usage(chat_usage(body.get("usage") or {})), body.get("id"))


def _usage(counts: dict[str, Any] | None) -> dict[str, Any]:
    """The manifest's usage, as a streamed run records what the server reported."""
    if counts is None:
        return {"prompt_tokens": None, "completion_tokens": None, "source": None}
    return {**counts, "source": "server"}


def _response(body: dict[str, Any]) -> Parsed:
    if body.get("object") != "response" or not isinstance(body.get("output"), list):
        raise ValueError("the result body is not a response object")
    one = Produced(index=0)
    for item in body["output"]:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "reasoning":
            parts = (item.get("summary") or []) + (item.get("content") or [])
            one.reasoning += "".join(_text(part.get("text")) for part in parts if isinstance(part, dict))
        elif kind == "message":
            for part in item.get("content") or []:
                if part.get("type") == "output_text":
                    one.content += _text(part.get("text"))
                elif part.get("type") == "refusal":
                    one.refusal += _text(part.get("refusal"))
        elif kind == "function_call":
            call = {key: item.get(key) for key in ("call_id", "name", "arguments")}
            one.tool_calls.append({"type": "function_call", **call})
    if body.get("status") == "incomplete":
        reason = (body.get("incomplete_details") or {}).get("reason")
        one.finish_reason = INCOMPLETE.get(str(reason), str(reason))
    else:
        one.finish_reason = "tool_calls" if one.tool_calls and not one.content else "stop"
    return Parsed([one], body.get("model"), _usage(responses_usage(body.get("usage") or {})), body.get("id"))
