"""The Responses API format: input mapping and the stream's events, as pure functions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streamdump.choices import REASONING, REFUSAL, Choices
from streamdump.errors import LineError, RequestFaultError, StreamEventError
from streamdump.jobs import Defaults, parse_line
from streamdump.sse import EventDecoder, StreamState
from streamdump.wire.responses import FORMAT as RESPONSES

RESP = {"id": "resp_1", "object": "response", "model": "gpt-5", "status": "in_progress", "output": []}


def sse(events: list[dict[str, Any]], *, named: bool = True, done: bool = False) -> bytes:
    """A stream as OpenAI frames it (event + data), or data-only with a trailing [DONE] (LiteLLM, vLLM)."""
    out = b""
    for number, event in enumerate(events):
        event = {**event, "sequence_number": number}
        if named:
            out += f"event: {event['type']}\n".encode()
        out += b"data: " + json.dumps(event).encode() + b"\n\n"
    if done:
        out += b"data: [DONE]\n\n"
    return out


def read(stream: bytes) -> tuple[StreamState, str, list[tuple[str, int, str]]]:
    sunk: list[tuple[str, int, str]] = []
    state = StreamState(choices=Choices(lambda kind, index, text: sunk.append((kind, index, text))))
    decoder = EventDecoder()
    text = ""
    for event, payload in [*decoder.feed(stream), *decoder.flush()]:
        text += RESPONSES.parse_event(payload, state, event) or ""
    return state, text, sunk


def completed(output: list[dict[str, Any]], **usage: Any) -> dict[str, Any]:
    body = {**RESP, "status": "completed", "output": output}
    body["usage"] = {
        "input_tokens": 5,
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 2},
        "input_tokens_details": {"cached_tokens": 1},
        "total_tokens": 12,
        **usage,
    }
    return {"type": "response.completed", "response": body}


MESSAGE = {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed", "content": []}
TEXT_EVENTS = [
    {"type": "response.created", "response": RESP},
    {"type": "response.in_progress", "response": RESP},
    {"type": "response.output_item.added", "output_index": 0, "item": {**MESSAGE, "status": "in_progress"}},
    {"type": "response.content_part.added", "output_index": 0, "content_index": 0, "item_id": "msg_1", "part": {}},
    {"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "item_id": "msg_1", "delta": "Hé"},
    {"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "item_id": "msg_1", "delta": "llo"},
    {"type": "response.output_text.done", "output_index": 0, "content_index": 0, "item_id": "msg_1", "text": "Héllo"},
    {"type": "response.some_event_from_next_year", "whatever": 1},
]


@pytest.mark.parametrize(("named", "done"), [(True, False), (False, True), (True, True)])
def test_text_stream_completes_with_usage_either_framing(named: bool, done: bool) -> None:
    state, text, sunk = read(sse([*TEXT_EVENTS, completed([MESSAGE])], named=named, done=done))
    assert text == "Héllo" and sunk == []
    assert (state.finish_reason, state.choices.complete, state.done) == ("stop", True, done)
    assert state.response_id == "resp_1" and state.model == "gpt-5"
    assert state.usage == {"prompt_tokens": 5, "completion_tokens": 7, "reasoning_tokens": 2, "cached_tokens": 1}


def test_a_stream_without_a_terminal_event_is_not_complete() -> None:
    state, text, _ = read(sse(TEXT_EVENTS))
    assert text == "Héllo"
    assert not state.choices.complete and state.finish_reason is None


def test_reasoning_and_refusal_go_to_their_files() -> None:
    events = [
        {"type": "response.reasoning_summary_text.delta", "output_index": 0, "summary_index": 0, "delta": "think"},
        {"type": "response.reasoning_text.delta", "output_index": 0, "content_index": 0, "delta": "ing"},
        {"type": "response.refusal.delta", "output_index": 1, "content_index": 0, "delta": "I can't"},
        completed([MESSAGE]),
    ]
    state, text, sunk = read(sse(events))
    assert text == ""
    assert sunk == [(REASONING, 0, "think"), (REASONING, 0, "ing"), (REFUSAL, 0, "I can't")]
    assert state.choices.refused == {0}


def test_function_calls_are_assembled_as_the_api_returns_them() -> None:
    call = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather", "arguments": ""}
    events = [
        {"type": "response.output_item.added", "output_index": 0, "item": call},
        {"type": "response.function_call_arguments.delta", "output_index": 0, "item_id": "fc_1", "delta": '{"ci'},
        {"type": "response.function_call_arguments.delta", "output_index": 0, "item_id": "fc_1", "delta": 'ty":1}'},
        {"type": "response.output_item.added", "output_index": 1, "item": {**call, "call_id": "call_2", "name": "b"}},
        {"type": "response.function_call_arguments.done", "output_index": 1, "item_id": "fc_2", "arguments": "{}"},
        completed([{**call, "arguments": '{"city":1}'}]),
    ]
    state, _, _ = read(sse(events))
    assert state.finish_reason == "tool_calls"  # function calls and no message
    assert state.choices.tool_calls(0) == [
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":1}'},
        {"type": "function_call", "call_id": "call_2", "name": "b", "arguments": "{}"},
    ]


@pytest.mark.parametrize(
    ("reason", "finish"),
    [("max_output_tokens", "length"), ("content_filter", "content_filter"), ("something_new", "something_new")],
)
def test_incomplete_completes_with_the_reason_mapped(reason: str, finish: str) -> None:
    body = {**RESP, "status": "incomplete", "incomplete_details": {"reason": reason}}
    state, text, _ = read(sse([*TEXT_EVENTS, {"type": "response.incomplete", "response": body}]))
    assert (text, state.finish_reason, state.choices.complete) == ("Héllo", finish, True)


@pytest.mark.parametrize(
    ("event", "error", "retried"),
    [
        ({"type": "response.failed"}, {"code": "server_error", "message": "boom"}, True),
        ({"type": "response.failed"}, {"code": "rate_limit_exceeded", "message": "slow down"}, True),
        ({"type": "response.failed"}, {"code": "invalid_prompt", "message": "flagged"}, False),
        ({"type": "error"}, {"code": "server_error", "message": "boom"}, True),
        ({"type": "error"}, {"code": "context_length_exceeded", "message": "too long"}, False),
        ({"type": "error"}, {"code": None, "message": "no code"}, True),
    ],
)
def test_failures_keep_the_servers_code_and_are_retried_only_when_transient(
    event: dict[str, Any], error: dict[str, Any], retried: bool
) -> None:
    if event["type"] == "response.failed":
        event = {**event, "response": {**RESP, "status": "failed", "error": error}}
    else:
        event = {**event, **error}
    with pytest.raises((StreamEventError, RequestFaultError)) as caught:
        read(sse([*TEXT_EVENTS[:5], event]))
    exc = caught.value
    assert exc.retryable is retried
    assert isinstance(exc, StreamEventError if retried else RequestFaultError)
    assert exc.code == error["code"]
    assert error["message"] in str(exc)


# -- input mapping --------------------------------------------------------------------------
DEFAULTS = Defaults(model="m", api="responses")


def line(obj: dict[str, Any], defaults: Defaults = DEFAULTS) -> Any:
    return parse_line(json.dumps(obj), 1, defaults)


def test_a_prompt_is_input_and_system_is_instructions() -> None:
    job = line({"prompt": "hi", "system": "be brief", "params": {"reasoning": {"effort": "low"}}})
    assert job.api == "responses"
    assert job.body() == {"reasoning": {"effort": "low"}, "model": "m", "input": "hi", "instructions": "be brief"}


def test_max_tokens_and_system_defaults_fill_the_formats_own_fields() -> None:
    defaults = Defaults(model="m", api="responses", system="sys", max_tokens=50)
    job = line({"prompt": "hi"}, defaults)
    assert job.body() == {"max_output_tokens": 50, "model": "m", "input": "hi", "instructions": "sys"}
    assert job.output_limit == 50
    own = line({"prompt": "hi", "params": {"max_output_tokens": 9}}, defaults)
    assert own.params == {"max_output_tokens": 9}


def test_messages_become_input_items() -> None:
    messages = [
        {"role": "developer", "content": "rules"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "what is"}, {"type": "image_url", "image_url": {"url": "u"}}],
        },
        {"role": "assistant", "content": "a cat"},
    ]
    job = line({"messages": messages}, Defaults(model="m", api="responses", system="unused: a developer message"))
    assert job.request == {
        "input": [
            {"role": "developer", "content": "rules"},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "what is"},
                    {"type": "input_image", "image_url": "u", "detail": "auto"},
                ],
            },
            {"role": "assistant", "content": "a cat"},
        ]
    }


@pytest.mark.parametrize(
    ("obj", "problem"),
    [
        ({"messages": [{"role": "tool", "content": "42", "tool_call_id": "c"}]}, "tool result"),
        (
            {"messages": [{"role": "assistant", "content": None, "tool_calls": [{"id": "c"}]}]},
            "assistant tool call",
        ),
        ({"prompt": "x", "params": {"n": 2}}, '"n" is not a Responses API parameter'),
        ({"prompt": "x", "params": {"input": "y"}}, "may not set input"),
        (
            {"messages": [{"role": "user", "content": [{"type": "audio", "x": 1}]}]},
            "cannot be sent to the Responses API",
        ),
    ],
)
def test_what_the_responses_api_cannot_take_is_an_input_error(obj: dict[str, Any], problem: str) -> None:
    with pytest.raises(LineError, match=problem):
        line(obj)


def test_the_batch_body_is_a_response_object() -> None:
    from openai.types.responses import Response

    entry = {"model": "gpt-5", "usage": {"prompt_tokens": 3, "completion_tokens": 4, "reasoning_tokens": 1}}
    outputs = [
        {
            "index": 0,
            "content": "Hello",
            "refusal": None,
            "finish_reason": "stop",
            "tool_calls": [{"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}],
        }
    ]
    body = Response.model_validate(RESPONSES.batch_body(entry, outputs, created=1700000000, token="abc"))
    assert body.status == "completed" and body.output_text == "Hello"
    assert [item.type for item in body.output] == ["message", "function_call"]
    assert body.usage is not None and (body.usage.input_tokens, body.usage.output_tokens) == (3, 4)
    cut = RESPONSES.batch_body(entry, [{"index": 0, "content": "He", "finish_reason": "length"}], created=1, token="t")
    assert Response.model_validate(cut).incomplete_details.reason == "max_output_tokens"  # type: ignore[union-attr]
