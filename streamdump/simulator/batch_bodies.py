"""What the simulated Batch API answers each request line with: the non-streamed body. Pure.

The texts are the ones the simulator's streams give (``replies.reply``), so a job run live and
the same job run through the Batch API write the same files.  One function per endpoint:

- ``/v1/chat/completions``: a ``chat.completion`` object;
- ``/v1/responses``: a ``response`` object (``output`` holds reasoning, the message's
  ``output_text`` or refusal, and function calls);
- ``/v1/completions``: a ``text_completion`` object.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .replies import Choice, Style, reply
from .script import count_tokens_roughly

CHAT, RESPONSES, COMPLETIONS = "/v1/chat/completions", "/v1/responses", "/v1/completions"
ENDPOINTS = (CHAT, RESPONSES, COMPLETIONS)


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False)


def prompt_of(url: str, body: dict[str, Any]) -> str:
    """The text faults match on and answers are drawn from, as the streams choose it."""
    if url == COMPLETIONS:
        return _text(body.get("prompt") or "")
    items = body.get("messages") if url == CHAT else body.get("input")
    if isinstance(items, str):
        return items
    for item in reversed(items if isinstance(items, list) else []):
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, list) and url == RESPONSES:
                texts = [str(p["text"]) for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
                return "".join(texts) if texts else _text(content)
            return _text(content)
    return ""


def _prompt_tokens(url: str, body: dict[str, Any]) -> int:
    if url == CHAT:
        messages = body.get("messages") or []
        return sum(count_tokens_roughly(_text(m.get("content") or "")) for m in messages if isinstance(m, dict))
    if url == RESPONSES:
        text = _text(body.get("instructions") or "") + " " + _text(body.get("input") or "")
        return count_tokens_roughly(text)
    return count_tokens_roughly(_text(body.get("prompt") or ""))


def _as_chat_request(url: str, body: dict[str, Any]) -> dict[str, Any]:
    """What ``reply`` reads (n, tools, the output limit), from a request of any endpoint."""
    if url == CHAT:
        return body
    chat: dict[str, Any] = {"n": body.get("n")}
    if url == RESPONSES:
        chat["max_tokens"] = body.get("max_output_tokens")
        chat["tools"] = [
            {"type": "function", "function": {"name": tool.get("name")}}
            for tool in body.get("tools") or []
            if isinstance(tool, dict) and tool.get("type") == "function"
        ]
        chat["tool_choice"] = body.get("tool_choice")
        chat["parallel_tool_calls"] = body.get("parallel_tool_calls")
    else:
        chat["max_tokens"] = body.get("max_tokens")
    return chat


def answer_body(
    url: str, body: dict[str, Any], style: Style, *, response_id: str, created: int, model: str, cut: int | None = None
) -> dict[str, Any]:
    """The body a request line is answered with. ``cut``: pieces sent before a content filter stops it."""
    prompt = prompt_of(url, body)
    choices = reply(prompt, _as_chat_request(url, body), style)
    if cut is not None:
        for choice in choices:
            choice.content = choice.content[:cut]
            choice.finish = "content_filter"
    usage = {"prompt_tokens": _prompt_tokens(url, body), "completion_tokens": sum(c.tokens for c in choices)}
    build: Callable[..., dict[str, Any]] = {CHAT: _chat, RESPONSES: _response, COMPLETIONS: _completion}[url]
    return build(choices, style, response_id=response_id, created=created, model=model, usage=usage)


def _chat(
    choices: list[Choice], style: Style, *, response_id: str, created: int, model: str, usage: dict[str, int]
) -> dict[str, Any]:
    total = usage["prompt_tokens"] + usage["completion_tokens"]
    full: dict[str, Any] = {**usage, "total_tokens": total}
    reasoning = sum(len(choice.reasoning) for choice in choices)
    if reasoning:
        full["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return {
        "id": f"chatcmpl-{response_id}",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": choice.index,
                "message": {"refusal": None, **choice.message(style.reasoning_field)},
                "logprobs": None,
                "finish_reason": choice.finish,
            }
            for choice in choices
        ],
        "usage": full,
        "system_fingerprint": None,
    }


def _response(
    choices: list[Choice], style: Style, *, response_id: str, created: int, model: str, usage: dict[str, int]
) -> dict[str, Any]:
    choice = choices[0]  # the Responses API has no n
    output: list[dict[str, Any]] = []
    if choice.reasoning:
        summary = [{"type": "summary_text", "text": "".join(choice.reasoning)}]
        output.append({"id": f"rs_{response_id}", "type": "reasoning", "summary": summary})
    if choice.content or choice.refusal or not choice.tool_calls:
        part = (
            {"type": "refusal", "refusal": "".join(choice.refusal)}
            if choice.refusal
            else {"type": "output_text", "text": "".join(choice.content), "annotations": []}
        )
        output.append(
            {
                "id": f"msg_{response_id}",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [part],
            }
        )
    for call in choice.tool_calls:
        function = call["function"]
        output.append(
            {
                "id": f"fc_{call['id']}",
                "type": "function_call",
                "call_id": call["id"],
                "name": function["name"],
                "arguments": function["arguments"],
                "status": "completed",
            }
        )
    incomplete = choice.finish in ("length", "content_filter")
    reason = "max_output_tokens" if choice.finish == "length" else "content_filter"
    return {
        "id": f"resp_{response_id}",
        "object": "response",
        "created_at": created,
        "status": "incomplete" if incomplete else "completed",
        "incomplete_details": {"reason": reason} if incomplete else None,
        "error": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": usage["prompt_tokens"],
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": usage["completion_tokens"],
            "output_tokens_details": {"reasoning_tokens": len(choice.reasoning)},
            "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"],
        },
    }


def _completion(
    choices: list[Choice], style: Style, *, response_id: str, created: int, model: str, usage: dict[str, int]
) -> dict[str, Any]:
    return {
        "id": f"cmpl-{response_id}",
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": choice.index, "text": "".join(choice.content), "logprobs": None, "finish_reason": choice.finish}
            for choice in choices
        ],
        "usage": {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]},
    }
