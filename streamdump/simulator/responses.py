"""``POST /v1/responses``: the Responses API's stream of typed events, or one Response object.

A stream, as OpenAI sends it (each event ``event: TYPE`` + ``data: {"type": TYPE,
"sequence_number": N, ...}``, no ``[DONE]``; with ``SimConfig.responses_data_only`` data lines
only and a trailing ``data: [DONE]``, as LiteLLM and vLLM send it)::

    response.created, response.in_progress
    reasoning (with SimConfig.reasoning), as output item 0:
        response.output_item.added (reasoning)
        response.reasoning_summary_part.added, response.reasoning_summary_text.delta...,
        response.reasoning_summary_text.done, response.reasoning_summary_part.done
        (responses_reasoning="text": response.content_part.added (reasoning_text),
        response.reasoning_text.delta..., response.reasoning_text.done, response.content_part.done)
        response.output_item.done
    the message (no tools, or a refusal):
        response.output_item.added (message), response.content_part.added (output_text),
        response.output_text.delta..., response.output_text.done,
        (a refusal: part refusal, response.refusal.delta..., response.refusal.done)
        response.content_part.done, response.output_item.done
    or one function call per tool (when the request has ``tools``):
        response.output_item.added (function_call), response.function_call_arguments.delta...,
        response.function_call_arguments.done, response.output_item.done
    response.completed, with the Response and its usage

``max_output_tokens`` below the answer's length ends it there: the open item is closed as
``incomplete`` and ``response.incomplete`` (reason ``max_output_tokens``) comes last. Faults cut
the stream after ``after`` pieces: content-filter the same way with reason ``content_filter``;
failed with ``response.failed`` (its ``code``, default ``server_error``); sse-error with an
``error`` event. The text is what chat would answer the same prompt (``replies``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .formats import DONE, LINGER, Event, Format, Generation, Problem, data_event, style_of
from .replies import ARGUMENT_PIECE, choice_reply
from .script import count_tokens_roughly

MIN_OUTPUT_TOKENS = 16  # OpenAI refuses a smaller max_output_tokens
MOVED = {"messages": "input", "max_tokens": "max_output_tokens", "max_completion_tokens": "max_output_tokens"}
UNKNOWN = ("n",)  # chat parameters the Responses API does not know
FAILED_MESSAGE = "simulated failure"
ERROR_MESSAGE = "simulated mid-stream error"
# A reasoning item's events: part added, delta, text done, part done, and the part's type.
SUMMARY_EVENTS = (
    "response.reasoning_summary_part.added",
    "response.reasoning_summary_text.delta",
    "response.reasoning_summary_text.done",
    "response.reasoning_summary_part.done",
    "summary_text",
)
TEXT_EVENTS = (
    "response.content_part.added",
    "response.reasoning_text.delta",
    "response.reasoning_text.done",
    "response.content_part.done",
    "reasoning_text",
)


def _text(content: object) -> str:
    """The text of an input item's content: a string, or its ``input_text`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict)
            and part.get("type") in ("input_text", "text")
            and isinstance(part.get("text"), str)
        )
    return ""


def prompt_of(body: dict[str, Any]) -> str:
    """The text faults match on: the input string, or the last user input item's text."""
    given = body.get("input")
    if isinstance(given, str):
        return given
    for item in reversed(given if isinstance(given, list) else []):
        if isinstance(item, dict) and item.get("role") == "user" and item.get("type", "message") == "message":
            return _text(item.get("content"))
    return ""


def check(body: dict[str, Any]) -> Problem | None:
    """What OpenAI refuses with 400 before it starts: chat's parameters, a tiny output limit."""
    for name, moved in MOVED.items():
        if name in body:
            message = (
                f"Unsupported parameter: '{name}'. In the Responses API, this parameter has moved to "
                f"'{moved}'. Try again with the new parameter."
            )
            return Problem(message, param=name, code="unsupported_parameter")
    unknown = [name for name in UNKNOWN if name in body]
    options = body.get("stream_options")
    if isinstance(options, dict) and "include_usage" in options:  # its stream_options has no such key
        unknown.append("stream_options.include_usage")
    if unknown:
        return Problem(f"Unknown parameter: '{unknown[0]}'.", param=unknown[0], code="unknown_parameter")
    for number, tool in enumerate(body.get("tools") or []):
        if isinstance(tool, dict) and tool.get("type") == "function" and not isinstance(tool.get("name"), str):
            # Chat's shape, {"type": "function", "function": {"name": ...}}, lands here.
            param = f"tools[{number}].name"
            return Problem(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")
    limit = body.get("max_output_tokens")
    if isinstance(limit, int) and limit < MIN_OUTPUT_TOKENS:
        message = (
            "Invalid 'max_output_tokens': integer below minimum value. "
            f"Expected a value >= {MIN_OUTPUT_TOKENS}, but got {limit} instead."
        )
        return Problem(message, param="max_output_tokens", code="integer_below_min_value")
    return None


def _tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's tools as the Response echoes them (function tools with their defaults)."""
    tools = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") == "function":
            tool = {"description": None, "parameters": None, "strict": True, **tool}
        tools.append(tool)
    return tools


def _input_tokens(body: dict[str, Any]) -> int:
    given = body.get("input")
    items = [given] if isinstance(given, str) else given if isinstance(given, list) else []
    texts = [
        item if isinstance(item, str) else _text(item.get("content")) for item in items if isinstance(item, str | dict)
    ]
    if isinstance(body.get("instructions"), str):
        texts.append(body["instructions"])
    return sum(count_tokens_roughly(text) for text in texts)


class _Stream:
    """Builds one response's events in order, counting pieces, and stops where the cut is."""

    def __init__(self, generation: Generation, cut: int | None) -> None:
        self.g = generation
        self.cut = cut
        self.data_only = generation.config.responses_data_only
        self.events: list[Event] = []
        self.sequence = 0
        self.pieces = 0
        self.reasoning = 0  # reasoning pieces sent
        self.output: list[dict[str, Any]] = []  # items done
        self.id = generation.id("resp_")
        self.final: dict[str, Any] | None = None

    # -- events -------------------------------------------------------------------------------
    def emit(self, kind: str, *, piece: bool = False, **fields: Any) -> None:
        data = data_event({"type": kind, "sequence_number": self.sequence, **fields})
        self.sequence += 1
        self.events.append(Event(data if self.data_only else f"event: {kind}\n".encode() + data, piece=piece))

    def piece(self, kind: str, **fields: Any) -> bool:
        """Emit a piece, unless the cut comes first (then False)."""
        if self.pieces == self.cut:
            return False
        self.emit(kind, piece=True, **fields)
        self.pieces += 1
        return True

    def response(self, status: str, **fields: Any) -> dict[str, Any]:
        body, g = self.g.body, self.g
        return {
            "id": self.id,
            "object": "response",
            "created_at": g.created,
            "status": status,
            "background": False,
            "completed_at": g.created if status == "completed" else None,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": None,
            "model": g.model,
            "output": list(self.output),
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": _tools(body),
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": None,
            "user": None,
            "metadata": body.get("metadata") or {},
            **fields,
        }

    def usage(self) -> dict[str, Any] | None:
        config = self.g.config
        if not config.usage:
            return None
        given, made, thought = _input_tokens(self.g.body), self.pieces, self.reasoning
        if config.zero_usage:
            given = made = thought = 0
        return {
            "input_tokens": given,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": made,
            "output_tokens_details": {"reasoning_tokens": thought},
            "total_tokens": given + made,
        }

    def finish(self, kind: str, **fields: Any) -> None:
        self.final = self.response(kind.removeprefix("response."), **fields)
        self.emit(kind, response=self.final)

    # -- items: each returns False when the cut came inside it (the item is left open) -------
    def reasoning_item(self, pieces: list[str]) -> bool:
        index, item_id = len(self.output), self.g.id("rs_")
        summary = self.g.config.responses_reasoning != "text"
        self.emit("response.output_item.added", output_index=index, item=_reasoning(item_id, "", summary=summary))
        where: dict[str, Any] = {"item_id": item_id, "output_index": index}
        if summary:
            where["summary_index"] = 0
            events = SUMMARY_EVENTS
        else:
            where["content_index"] = 0
            events = TEXT_EVENTS
        part_added, delta, done, part_done, part_type = events
        self.emit(part_added, **where, part={"type": part_type, "text": ""})
        text, cut = "", False
        for piece in pieces:
            if not self.piece(delta, **where, delta=piece):
                cut = True
                break
            text += piece
            self.reasoning += 1
        if cut and not self._closing():
            return False
        self.emit(done, **where, text=text)
        self.emit(part_done, **where, part={"type": part_type, "text": text})
        item = _reasoning(item_id, text, summary=summary)
        self.emit("response.output_item.done", output_index=index, item=item)
        self.output.append(item)
        return not cut

    def message_item(self, pieces: list[str], *, refusal: bool, incomplete: bool) -> bool:
        index, item_id = len(self.output), self.g.id("msg_")
        opened = {"id": item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
        self.emit("response.output_item.added", output_index=index, item=opened)
        where: dict[str, Any] = {"item_id": item_id, "output_index": index, "content_index": 0}
        self.emit("response.content_part.added", **where, part=_part("", refusal=refusal))
        text, cut = "", False
        kind = "response.refusal.delta" if refusal else "response.output_text.delta"
        extra: dict[str, Any] = {} if refusal else {"logprobs": []}
        for piece in pieces:
            if not self.piece(kind, **where, delta=piece, **extra):
                cut = True
                break
            text += piece
        if cut and not self._closing():
            return False
        if refusal:
            self.emit("response.refusal.done", **where, refusal=text)
        else:
            self.emit("response.output_text.done", **where, text=text, logprobs=[])
        part = _part(text, refusal=refusal)
        self.emit("response.content_part.done", **where, part=part)
        status = "incomplete" if cut or incomplete else "completed"
        item = {**opened, "status": status, "content": [part]}
        self.emit("response.output_item.done", output_index=index, item=item)
        self.output.append(item)
        return not cut

    def call_item(self, call: dict[str, Any], position: int) -> bool:
        index, item_id = len(self.output), self.g.id(f"fc_{position}_")
        function = call["function"]
        opened = {
            "id": item_id,
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": call["id"],
            "name": function["name"],
        }
        self.emit("response.output_item.added", output_index=index, item=opened)
        where: dict[str, Any] = {"item_id": item_id, "output_index": index}
        arguments = function["arguments"]
        sent, cut = "", False
        for start in range(0, len(arguments), ARGUMENT_PIECE):
            piece = arguments[start : start + ARGUMENT_PIECE]
            if not self.piece("response.function_call_arguments.delta", **where, delta=piece):
                cut = True
                break
            sent += piece
        if cut and not self._closing():
            return False
        self.emit("response.function_call_arguments.done", **where, arguments=sent)
        item = {**opened, "status": "incomplete" if cut else "completed", "arguments": sent}
        self.emit("response.output_item.done", output_index=index, item=item)
        self.output.append(item)
        return not cut

    def _closing(self) -> bool:
        """At the cut: does the open item get its .done events (content-filter), or not?"""
        return self.g.fault is not None and self.g.fault.kind == "content-filter"

    def at_cut(self) -> None:
        """End the stream where the cut came, as the fault says."""
        fault = self.g.fault
        assert fault is not None
        code = fault.code or "server_error"
        if fault.kind == "content-filter":
            self.finish("response.incomplete", incomplete_details={"reason": "content_filter"}, usage=self.usage())
        elif fault.kind == "failed":
            self.finish("response.failed", error={"code": code, "message": FAILED_MESSAGE})
        else:
            self.emit("error", code=code, message=ERROR_MESSAGE, param=None)


def _reasoning(item_id: str, text: str, *, summary: bool) -> dict[str, Any]:
    if summary:
        return {"id": item_id, "type": "reasoning", "summary": [{"type": "summary_text", "text": text}] if text else []}
    content = [{"type": "reasoning_text", "text": text}] if text else []
    return {"id": item_id, "type": "reasoning", "summary": [], "content": content}


def _part(text: str, *, refusal: bool) -> dict[str, Any]:
    if refusal:
        return {"type": "refusal", "refusal": text}
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _build(generation: Generation, cut: int | None) -> _Stream:
    body = generation.body
    chat_like = {
        "tools": [{"type": "function", "function": {"name": tool["name"]}} for tool in _tools(body) if "name" in tool],
        "tool_choice": body.get("tool_choice"),
        "parallel_tool_calls": body.get("parallel_tool_calls"),
        "max_tokens": body.get("max_output_tokens"),
        "text": body.get("text"),  # a json_schema format: the answer is JSON that fits it
    }
    choice = choice_reply(generation.prompt, chat_like, style_of(generation), 0)
    cut_short = choice.finish == "length"
    out = _Stream(generation, cut)
    out.emit("response.created", response=out.response("in_progress"))
    out.emit("response.in_progress", response=out.response("in_progress"))
    items: list[Callable[[], bool]] = []
    if choice.reasoning:
        items.append(functools.partial(out.reasoning_item, choice.reasoning))
    if choice.refusal:
        items.append(functools.partial(out.message_item, choice.refusal, refusal=True, incomplete=cut_short))
    elif choice.tool_calls:
        items += [functools.partial(out.call_item, call, n) for n, call in enumerate(choice.tool_calls)]
    elif choice.content or not cut_short:  # no message when the limit struck while reasoning
        items.append(functools.partial(out.message_item, choice.content, refusal=False, incomplete=cut_short))
    if not all(item() for item in items):  # all() stops at the item the cut came in
        out.at_cut()
    elif cut_short:
        out.finish("response.incomplete", incomplete_details={"reason": "max_output_tokens"}, usage=out.usage())
    else:
        out.finish("response.completed", usage=out.usage())
    return out


def stream(generation: Generation) -> list[Event]:
    out = _build(generation, generation.cut)
    if out.final is None:  # an error event: the body ends there
        return out.events
    events = [*out.events, LINGER]
    return [*events, DONE] if generation.config.responses_data_only else events


def complete(generation: Generation) -> dict[str, Any]:
    """The whole Response (a content-filter or failed fault shows in its status; sse-error does not)."""
    fault = generation.fault
    cut = generation.cut if fault is not None and fault.kind in ("content-filter", "failed") else None
    final = _build(generation, cut).final
    assert final is not None
    return final


FORMAT = Format(name="responses", prompt=prompt_of, stream=stream, complete=complete, check=check)
