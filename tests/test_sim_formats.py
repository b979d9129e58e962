"""The simulator's three wire formats, checked over real HTTP against openai's own types, so the
simulator cannot drift from the real API without a test failing."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import httpx2
import pytest
from openai import AsyncOpenAI
from openai.types import Completion, CompletionChoice
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter
from typer.testing import CliRunner

from streamdump.cli import app
from streamdump.simulator import Simulator, parse_fault
from streamdump.simulator.replies import REFUSAL, answer_pieces, tool_arguments
from streamdump.simulator.script import response_pieces
from streamdump.sse import EventDecoder

from support import LENGTH, Ran, expected_choice, expected_reasoning, expected_text, write_jsonl

EVENT = TypeAdapter(ResponseStreamEvent)
FAST_RETRY = ("--backoff-base", "0.01", "--backoff-max", "0.02", "--max-retries", "2")
TOOLS = [
    {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}},
    {"type": "function", "name": "save"},
]

# The sequence OpenAI sends for a plain answer.
PLAIN = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    *["response.output_text.delta"] * LENGTH,
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


def post(sim: Simulator, path: str, body: dict[str, Any]) -> httpx2.Response:
    return httpx2.post(sim.base_url + path, json={"model": "sim-1", **body}, timeout=30)


def sse(response: httpx2.Response) -> list[tuple[str | None, bytes]]:
    decoder = EventDecoder()
    return [*decoder.feed(response.content), *decoder.flush()]


def response_events(sim: Simulator, body: dict[str, Any], *, named: bool = True) -> list[Any]:
    """A streamed Responses request's events, each checked against openai's ResponseStreamEvent:
    its name is its type, and sequence numbers count up from 0."""
    reply = post(sim, "/responses", {"stream": True, **body})
    assert reply.status_code == 200
    assert reply.headers["x-request-id"].startswith("req_")
    events = []
    for name, data in sse(reply):
        if data == b"[DONE]":
            assert not named, "OpenAI sends no [DONE]"
            continue
        event = EVENT.validate_json(data)
        assert name == (event.type if named else None)
        events.append(event)
    assert [event.sequence_number for event in events] == list(range(len(events)))
    return events


def types(events: list[Any]) -> list[str]:
    return [event.type for event in events]


def deltas(events: list[Any], kind: str) -> str:
    return "".join(event.delta for event in events if event.type == kind)


def final(events: list[Any]) -> Response:
    response = events[-1].response
    # The event's Response is openai's own type; check it also as a standalone body.
    return Response.model_validate_json(response.model_dump_json())


# -- the Responses API ----------------------------------------------------------------------------
def test_a_responses_stream_is_the_sequence_openai_sends(sim: Simulator) -> None:
    events = response_events(sim, {"input": "hello"})
    assert types(events) == PLAIN
    assert deltas(events, "response.output_text.delta") == expected_text("hello")
    response = final(events)
    assert response.status == "completed" and response.id.startswith("resp_")
    assert response.output_text == expected_text("hello")
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (1, 12, 13)
    assert response.usage.output_tokens_details.reasoning_tokens == 0
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert events[0].response.status == "in_progress" and events[0].response.id == response.id


def test_the_openai_client_parses_a_responses_stream(sim: Simulator) -> None:
    async def main() -> tuple[str, list[str], Any]:
        async with AsyncOpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=0) as client:
            stream = await client.responses.create(model="sim-1", input="hello", stream=True)
            text, kinds, last = "", [], None
            async for event in stream:
                kinds.append(event.type)
                if event.type == "response.output_text.delta":
                    text += event.delta
                last = event
            return text, kinds, last

    text, kinds, last = asyncio.run(main())
    assert text == expected_text("hello")
    assert kinds == PLAIN
    assert last.type == "response.completed" and last.response.output_text == text


@pytest.mark.parametrize(
    ("prompt", "extra", "items"),
    [
        ("hello", {}, ["reasoning", "message"]),
        ("refuse this", {}, ["reasoning", "message"]),
        ("call", {"tools": [{**TOOLS[0], "strict": False}]}, ["reasoning", "function_call"]),
    ],
)
def test_the_openai_stream_helper_accumulates_a_responses_stream(
    start_sim: Callable[..., Simulator], prompt: str, extra: dict[str, Any], items: list[str]
) -> None:
    """openai's ``responses.stream`` rebuilds the response from the events and checks that items
    keep their identity from added to done to completed: our events must add up."""
    sim = start_sim(["refuse,match=refuse"], reasoning=2)

    async def main() -> tuple[dict[str, str], Response]:
        snapshots: dict[str, str] = {}
        async with (
            AsyncOpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=0) as client,
            client.responses.stream(model="sim-1", input=prompt, **extra) as stream,
        ):
            async for event in stream:
                if event.type in ("response.output_text.delta", "response.function_call_arguments.delta"):
                    snapshots[event.type] = event.snapshot
            return snapshots, await stream.get_final_response()

    snapshots, response = asyncio.run(main())
    assert [item.type for item in response.output] == items
    if prompt == "hello":
        assert snapshots == {"response.output_text.delta": expected_text("hello")} == {PLAIN[4]: response.output_text}
    elif prompt == "call":
        assert snapshots == {"response.function_call_arguments.delta": tool_arguments("call", "lookup", 0)}
    else:
        assert snapshots == {} and response.output[1].content[0].refusal == REFUSAL


def test_responses_reasoning_comes_first_as_a_summary(start_sim: Callable[..., Simulator]) -> None:
    sim = start_sim(reasoning=3)
    events = response_events(sim, {"input": "think"})
    assert types(events)[:10] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        *["response.reasoning_summary_text.delta"] * 3,
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
    ]
    assert types(events)[10:] == PLAIN[2:]
    assert deltas(events, "response.reasoning_summary_text.delta") == expected_reasoning("think", 3)
    response = final(events)
    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.output_text == expected_text("think")
    assert response.usage is not None
    assert response.usage.output_tokens == 15 and response.usage.output_tokens_details.reasoning_tokens == 3


def test_responses_reasoning_as_text_as_open_models_send_it(start_sim: Callable[..., Simulator]) -> None:
    sim = start_sim(reasoning=2, responses_reasoning="text")
    events = response_events(sim, {"input": "think"})
    assert types(events)[2:9] == [
        "response.output_item.added",
        "response.content_part.added",
        *["response.reasoning_text.delta"] * 2,
        "response.reasoning_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    assert deltas(events, "response.reasoning_text.delta") == expected_reasoning("think", 2)
    reasoning = final(events).output[0]
    assert reasoning.type == "reasoning" and reasoning.content is not None
    assert reasoning.content[0].text == expected_reasoning("think", 2)


def test_a_responses_refusal_is_a_refusal_part(start_sim: Callable[..., Simulator]) -> None:
    sim = start_sim(["refuse"])
    events = response_events(sim, {"input": "no"})
    kinds = types(events)
    assert "response.output_text.delta" not in kinds and "response.refusal.done" in kinds
    assert deltas(events, "response.refusal.delta") == REFUSAL
    (message,) = final(events).output
    assert message.type == "message" and message.content[0].type == "refusal"
    assert message.content[0].refusal == REFUSAL


@pytest.mark.parametrize(("parallel", "names"), [(None, ["lookup", "save"]), (False, ["lookup"])])
def test_responses_tool_calls_are_function_call_items(sim: Simulator, parallel: bool | None, names: list[str]) -> None:
    body: dict[str, Any] = {"input": "naïve 日本語", "tools": TOOLS}
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    events = response_events(sim, body)
    added = [e.item for e in events if e.type == "response.output_item.added"]
    assert [(item.type, item.name) for item in added] == [("function_call", name) for name in names]
    response = final(events)
    assert response.status == "completed" and response.output_text == ""
    for position, (item, name) in enumerate(zip(response.output, names, strict=True)):
        assert item.type == "function_call" and item.name == name and item.call_id.startswith("call_")
        arguments = "".join(
            e.delta for e in events if e.type == "response.function_call_arguments.delta" and e.output_index == position
        )
        assert arguments == item.arguments == tool_arguments("naïve 日本語", name, 0)
        (done,) = [
            e for e in events if e.type == "response.function_call_arguments.done" and e.output_index == position
        ]
        assert done.arguments == arguments
    assert len(response.tools) == 2


def test_responses_max_output_tokens_ends_incomplete(start_sim: Callable[..., Simulator]) -> None:
    sim = start_sim(length=20)
    events = response_events(sim, {"input": "long", "max_output_tokens": 16})
    assert types(events)[-1] == "response.incomplete"
    assert deltas(events, "response.output_text.delta") == "".join(response_pieces("long", length=20)[:16])
    response = final(events)
    assert response.status == "incomplete" and response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output[0].type == "message" and response.output[0].status == "incomplete"
    assert response.usage is not None and response.usage.output_tokens == 16


@pytest.mark.parametrize(
    ("fault", "last", "deltas_sent"),
    [
        ("content-filter,after=3", "response.incomplete", 3),
        ("failed,after=2,code=invalid_prompt", "response.failed", 2),
        ("failed", "response.failed", 0),
        ("sse-error,after=4,code=server_error", "error", 4),
    ],
)
def test_responses_faults_that_end_the_stream_with_an_event(
    start_sim: Callable[..., Simulator], fault: str, last: str, deltas_sent: int
) -> None:
    sim = start_sim([fault])
    events = response_events(sim, {"input": "cut"})
    assert types(events)[-1] == last
    assert types(events).count("response.output_text.delta") == deltas_sent
    assert "response.completed" not in types(events)
    end = events[-1]
    if last == "response.incomplete":
        assert end.response.incomplete_details.reason == "content_filter"
        assert end.response.output[0].status == "incomplete"
        assert end.response.output[0].content[0].text == "".join(response_pieces("cut", length=LENGTH)[:3])
    elif last == "response.failed":
        assert end.response.status == "failed"
        assert end.response.error.code == (parse_fault(fault).code or "server_error")
    else:
        assert (end.code, end.message) == ("server_error", "simulated mid-stream error")


def test_data_only_responses_stream_ends_with_done(start_sim: Callable[..., Simulator]) -> None:
    sim = start_sim(responses_data_only=True)
    reply = post(sim, "/responses", {"input": "hello", "stream": True})
    assert b"event:" not in reply.content
    assert sse(reply)[-1] == (None, b"[DONE]")
    assert types(response_events(sim, {"input": "hello"}, named=False)) == PLAIN


def test_zero_usage_as_some_servers_send_it(start_sim: Callable[..., Simulator]) -> None:
    sim = start_sim(zero_usage=True)
    usage = final(response_events(sim, {"input": "hello"})).usage
    assert usage is not None and (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (0, 0, 0)


def test_no_usage(start_sim: Callable[..., Simulator]) -> None:
    sim = start_sim(usage=False)
    assert final(response_events(sim, {"input": "hello"})).usage is None


def test_responses_input_items_and_instructions(start_sim: Callable[..., Simulator]) -> None:
    sim = start_sim(["refuse,match=second"])
    items = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "an answer"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "second question"}]},
    ]
    events = response_events(sim, {"input": items, "instructions": "be brief"})
    assert sim.stats.requests[-1].prompt == "second question"
    assert "response.refusal.delta" in types(events)  # the fault matched the last user item's text
    response = final(events)
    assert response.instructions == "be brief"
    assert response.usage is not None and response.usage.input_tokens == 2 + 2 + 2 + 2


def test_a_non_streamed_responses_request_gets_a_response(start_sim: Callable[..., Simulator]) -> None:
    sim = start_sim(length=20, reasoning=2)
    reply = post(sim, "/responses", {"input": "whole", "max_output_tokens": 16})
    assert reply.status_code == 200 and reply.headers["x-request-id"].startswith("req_")
    response = Response.model_validate_json(reply.content)
    assert response.status == "incomplete" and response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "".join(response_pieces("whole", length=20)[:14])  # 2 went to reasoning
    assert response.usage is not None and response.usage.output_tokens == 16
    whole = Response.model_validate_json(post(sim, "/responses", {"input": "whole"}).content)
    assert whole.status == "completed" and whole.output_text == expected_text("whole", 20)


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "messages", "unsupported_parameter"),
        ({"input": "x", "max_tokens": 50}, "max_tokens", "unsupported_parameter"),
        ({"input": "x", "n": 2}, "n", "unknown_parameter"),
        (
            {"input": "x", "stream_options": {"include_usage": True}},
            "stream_options.include_usage",
            "unknown_parameter",
        ),
        ({"input": "x", "max_output_tokens": 5}, "max_output_tokens", "integer_below_min_value"),
        (
            {"input": "x", "tools": [{"type": "function", "function": {"name": "chat_shape"}}]},
            "tools[0].name",
            "missing_required_parameter",
        ),
    ],
)
def test_responses_refuses_what_openai_refuses(sim: Simulator, body: dict[str, Any], param: str, code: str) -> None:
    reply = post(sim, "/responses", {"stream": True, **body})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        ("truncate,after=2", lambda kinds: kinds[-1] == "response.output_text.delta"),
        ("eof,after=2", lambda kinds: kinds[-1] == "response.output_text.delta"),
        ("stall=0.01,after=2", lambda kinds: kinds == PLAIN),
        ("split-utf8", lambda kinds: kinds == PLAIN),
        ("linger=0.01", lambda kinds: kinds == PLAIN),
    ],
)
def test_transport_faults_break_a_responses_stream(
    start_sim: Callable[..., Simulator], fault: str, check: Callable[[list[str]], bool]
) -> None:
    sim = start_sim([fault])
    kinds = types(response_events(sim, {"input": "日本語 faults"}))
    assert check(kinds), kinds


def test_malformed_and_dropped_responses_streams(start_sim: Callable[..., Simulator]) -> None:
    sim = start_sim(["malformed,after=1,match=bad", "drop,after=1,match=drop", "429,retry_after=7,match=busy"])
    reply = post(sim, "/responses", {"input": "bad", "stream": True})
    datas = [data for _, data in sse(reply)]
    assert b"{this is not json" in datas and len(datas) == len(PLAIN) + 1
    with pytest.raises(httpx2.TransportError):
        post(sim, "/responses", {"input": "drop", "stream": True})
    busy = post(sim, "/responses", {"input": "busy", "stream": True})
    assert busy.status_code == 429 and busy.headers["retry-after"] == "7"


# -- text completions ---------------------------------------------------------------------------
class _ChunkChoice(CompletionChoice):
    finish_reason: Literal["stop", "length", "content_filter"] | None = None


class CompletionChunk(Completion):
    """openai's Completion as a stream chunk: the API sends ``finish_reason: null`` until a choice
    ends (the SDK builds stream chunks without validating them, so its type does not say so)."""

    choices: list[_ChunkChoice]  # type: ignore[assignment]


def completion_chunks(sim: Simulator, body: dict[str, Any]) -> list[CompletionChunk]:
    reply = post(sim, "/completions", {"stream": True, **body})
    assert reply.status_code == 200
    events = sse(reply)
    assert events[-1] == (None, b"[DONE]")
    chunks = [CompletionChunk.model_validate_json(data) for _, data in events[:-1]]
    for chunk, (_, data) in zip(chunks, events, strict=False):
        if all(choice.finish_reason for choice in chunk.choices):  # finish and usage chunks
            Completion.model_validate_json(data)
    return chunks


def test_a_completions_stream(sim: Simulator) -> None:
    chunks = completion_chunks(sim, {"prompt": "Once upon", "stream_options": {"include_usage": True}})
    assert all(chunk.object == "text_completion" for chunk in chunks)
    assert "".join(c.text for chunk in chunks for c in chunk.choices) == expected_text("Once upon")
    assert [c.finish_reason for c in chunks[-2].choices] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (2, LENGTH)
    assert all(chunk.usage is None for chunk in chunks[:-1])


def test_completions_several_choices_by_index(sim: Simulator) -> None:
    chunks = completion_chunks(sim, {"prompt": "p", "n": 2})
    for index in (0, 1):
        text = "".join(c.text for chunk in chunks for c in chunk.choices if c.index == index)
        assert text == expected_choice("p", index)
    finishes = [c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason]
    assert finishes == ["stop", "stop"]
    assert [c.index for c in chunks[0].choices + chunks[1].choices] == [0, 1]


@pytest.mark.parametrize(
    ("faults", "body", "finish", "pieces"),
    [
        ((), {"max_tokens": 3}, "length", 3),
        (("content-filter,after=5",), {}, "content_filter", 5),
        (("refuse",), {}, "stop", LENGTH),  # a base model has no refusals: the text as ever
        (("single-choice",), {"n": 3}, "stop", LENGTH),
    ],
)
def test_completions_finish_reasons(
    start_sim: Callable[..., Simulator], faults: tuple[str, ...], body: dict[str, Any], finish: str, pieces: int
) -> None:
    sim = start_sim(faults, reasoning=2)
    chunks = completion_chunks(sim, {"prompt": "p", "stream_options": {"include_usage": True}, **body})
    texts = [c.text for chunk in chunks for c in chunk.choices if not c.finish_reason]
    assert texts == response_pieces("p", length=LENGTH)[:pieces]
    assert [c.finish_reason for c in chunks[-2].choices] == [finish]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == pieces


def test_completions_error_events(start_sim: Callable[..., Simulator]) -> None:
    sim = start_sim(["failed,after=2,code=server_error"])
    reply = post(sim, "/completions", {"prompt": "p", "stream": True})
    *chunks, (_, last) = sse(reply)
    texts = [CompletionChunk.model_validate_json(data).choices[0].text for _, data in chunks]
    assert texts == response_pieces("p", length=LENGTH)[:2]
    assert json.loads(last) == {
        "error": {"message": "simulated mid-stream error", "type": "server_error", "code": "server_error"}
    }


def test_a_non_streamed_completion(sim: Simulator) -> None:
    reply = post(sim, "/completions", {"prompt": ["a", "b"], "n": 2, "max_tokens": 4})
    completion = Completion.model_validate_json(reply.content)
    assert [c.index for c in completion.choices] == [0, 1, 2, 3]
    assert completion.choices[2].text == "".join(answer_pieces("b", length=LENGTH, choice=0)[:4])
    assert completion.choices[3].text == "".join(answer_pieces("b", length=LENGTH, choice=1)[:4])
    assert {c.finish_reason for c in completion.choices} == {"length"}
    assert completion.usage is not None and completion.usage.completion_tokens == 16


def test_the_openai_client_parses_a_completions_stream(sim: Simulator) -> None:
    async def main() -> str:
        async with AsyncOpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=0) as client:
            stream = await client.completions.create(model="sim-1", prompt="hello", stream=True)
            return "".join([chunk.choices[0].text async for chunk in stream if chunk.choices])

    assert asyncio.run(main()) == expected_text("hello")


@pytest.mark.parametrize(
    ("body", "param"),
    [({"messages": [{"role": "user", "content": "x"}]}, "messages"), ({}, "prompt"), ({"prompt": [1, 2]}, "prompt")],
)
def test_completions_refuses_what_is_not_a_completion(sim: Simulator, body: dict[str, Any], param: str) -> None:
    reply = post(sim, "/completions", body)
    assert reply.status_code == 400 and reply.json()["error"]["param"] == param


# -- chat -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("faults", "body"),
    [
        ((), {"stream_options": {"include_usage": True}}),
        (("refuse",), {}),
        ((), {"tools": [{"type": "function", "function": {"name": "lookup"}}]}),
        ((), {"n": 2, "max_tokens": 5}),
        (("content-filter,after=2",), {}),
    ],
)
def test_chat_chunks_and_answers_are_openais_types(
    start_sim: Callable[..., Simulator], faults: tuple[str, ...], body: dict[str, Any]
) -> None:
    sim = start_sim(faults, reasoning=2)
    request = {"messages": [{"role": "user", "content": "hi"}], **body}
    reply = post(sim, "/chat/completions", {"stream": True, **request})
    events = sse(reply)
    assert events[-1] == (None, b"[DONE]")
    chunks = [ChatCompletionChunk.model_validate_json(data) for _, data in events[:-1]]
    assert {chunk.id for chunk in chunks} == {chunks[0].id}
    assert any(c.finish_reason for chunk in chunks for c in chunk.choices)
    whole = ChatCompletion.model_validate_json(post(sim, "/chat/completions", request).content)
    assert whole.choices and whole.usage is not None


def test_chat_failed_fault_is_an_error_event_with_its_code(start_sim: Callable[..., Simulator]) -> None:
    sim = start_sim(["failed,after=1,code=invalid_prompt"])
    reply = post(sim, "/chat/completions", {"messages": [{"role": "user", "content": "x"}], "stream": True})
    assert json.loads(sse(reply)[-1][1])["error"]["code"] == "invalid_prompt"


# -- the simulate command -------------------------------------------------------------------------
def test_simulate_passes_its_format_switches_on() -> None:
    switches = ["--model", "a", "--model", "b", "--zero-usage", "--responses-data-only"]
    switches += ["--responses-reasoning", "text", "--reasoning", "1", "--length", "3"]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamdump",
            "simulate",
            "--port",
            "0",
            "--ttft",
            "0",
            "--tokens-per-second",
            "0",
            *switches,
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        url = re.search(r"http://\S+/v1", proc.stderr.readline())
        assert url is not None
        base = url.group(0)
        assert [m["id"] for m in httpx2.get(base + "/models").json()["data"]] == ["a", "b"]
        assert httpx2.post(base + "/responses", json={"model": "c", "input": "x"}).status_code == 404
        reply = httpx2.post(base + "/responses", json={"model": "a", "input": "x", "stream": True})
        events = sse(reply)
        assert events[-1] == (None, b"[DONE]") and all(name is None for name, _ in events)
        last = EVENT.validate_json(events[-2][1])
        assert last.type == "response.completed" and last.response.usage.output_tokens == 0
        assert "response.reasoning_text.delta" in [EVENT.validate_json(data).type for _, data in events[:-1]]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        assert proc.stderr is not None
        proc.stderr.close()


def test_simulate_refuses_an_unknown_responses_reasoning() -> None:
    result = CliRunner().invoke(app, ["simulate", "--responses-reasoning", "loud"])
    assert result.exit_code == 2 and "--responses-reasoning" in result.stderr


# -- through the CLI ------------------------------------------------------------------------------
@pytest.mark.parametrize("data_only", [False, True])
def test_a_responses_run_against_the_simulator(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path, data_only: bool
) -> None:
    sim = start_sim(
        ["refuse,match=refuse", "failed,match=bad,code=invalid_prompt", "failed,match=flaky,times=1,after=1"],
        reasoning=2,
        length=20,
        responses_data_only=data_only,
    )
    rows = [
        {"id": "plain", "prompt": "hello", "system": "be brief"},
        {"id": "tools", "prompt": "t", "params": {"tools": TOOLS[:1]}},
        {"id": "refuse", "prompt": "refuse me"},
        {"id": "short", "prompt": "short", "params": {"max_output_tokens": 16}},
        {"id": "bad", "prompt": "bad prompt"},
        {"id": "flaky", "prompt": "flaky"},
    ]
    ran = run_cli(write_jsonl(tmp_path / "p.jsonl", rows), "--api", "responses", *FAST_RETRY, sim=sim)
    assert ran.exit_code == 1, ran.stderr
    entries = ran.by_id()
    assert {key: entry["status"] for key, entry in entries.items()} == {
        "plain": "ok",
        "tools": "ok",
        "refuse": "refused",
        "short": "ok",
        "bad": "failed",
        "flaky": "ok",
    }
    assert (ran.out / "plain.txt").read_text() == expected_text("hello", 20)
    assert (ran.out / "plain.reasoning.txt").read_text() == expected_reasoning("hello", 2)
    assert entries["plain"]["usage"]["prompt_tokens"] == 3
    assert entries["short"]["finish_reason"] == "length" and entries["tools"]["finish_reason"] == "tool_calls"
    (call,) = json.loads((ran.out / "tools.tool_calls.json").read_text())
    assert (call["name"], call["arguments"]) == ("lookup", tool_arguments("t", "lookup", 0))
    assert entries["bad"]["error"]["code"] == "invalid_prompt"
    assert [r.prompt for r in sim.stats.requests].count("bad prompt") == 1  # the request was at fault
    assert [r.prompt for r in sim.stats.requests].count("flaky") == 2  # a server error: asked again
    assert {r.path for r in sim.stats.requests} == {"/v1/responses"}


def test_a_completions_run_against_the_simulator(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(["truncate,match=cut,times=1,after=3"], reasoning=2)
    rows = [
        {"id": "two", "prompt": "two", "params": {"n": 2}},
        {"id": "short", "prompt": "short", "params": {"max_tokens": 3}},
        {"id": "cut", "prompt": "cut"},
    ]
    ran = run_cli(write_jsonl(tmp_path / "p.jsonl", rows), "--api", "completions", *FAST_RETRY, sim=sim)
    assert ran.exit_code == 0, ran.stderr
    assert [(ran.out / f"two.{k}.txt").read_text() for k in (1, 2)] == [expected_choice("two", k) for k in (0, 1)]
    assert (ran.out / "short.txt").read_text() == "".join(response_pieces("short", length=LENGTH)[:3])
    assert ran.by_id()["short"]["finish_reason"] == "length"
    assert (ran.out / "cut.txt").read_text() == expected_text("cut")
    assert {r.path for r in sim.stats.requests} == {"/v1/completions"} and len(sim.stats.requests) == 4
