"""Text completions and the choice of format per line: input mapping, the stream, the batch body."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streamdump.choices import ANSWER, Choices
from streamdump.errors import LineError
from streamdump.jobs import Defaults, job_hash, parse_line, request_hash
from streamdump.sse import EventDecoder, StreamState
from streamdump.templates import parse_template
from streamdump.wire.completions import FORMAT as COMPLETIONS

DEFAULTS = Defaults(model="base", api="completions")


def line(obj: dict[str, Any] | str, defaults: Defaults = DEFAULTS) -> Any:
    return parse_line(obj if isinstance(obj, str) else json.dumps(obj), 7, defaults)


def chunk(index: int, text: str, finish: str | None = None, **extra: Any) -> bytes:
    body = {"id": "cmpl-1", "object": "text_completion", "model": "base", "created": 1, **extra}
    body["choices"] = [{"index": index, "text": text, "finish_reason": finish, "logprobs": None}]
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def test_the_stream_writes_each_choice_and_finishes_with_usage() -> None:
    sunk: list[tuple[str, int, str]] = []
    state = StreamState(choices=Choices(lambda kind, index, text: sunk.append((kind, index, text)), n=2))
    usage = {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10}
    stream = (
        chunk(0, "Once")
        + chunk(1, "In a")
        + chunk(0, " upon", "length")
        + chunk(1, " land", "stop")
        + b"data: "
        + json.dumps({"id": "cmpl-1", "object": "text_completion", "choices": [], "usage": usage}).encode()
        + b"\n\ndata: [DONE]\n\n"
    )
    decoder, text = EventDecoder(), ""
    for event, payload in decoder.feed(stream):
        text += COMPLETIONS.parse_event(payload, state, event) or ""
    assert text == "Once upon"
    assert sunk == [(ANSWER, 1, "In a"), (ANSWER, 1, " land")]
    assert state.choices.finished == {0: "length", 1: "stop"} and state.choices.complete
    assert state.finish_reason == "length" and state.done
    assert state.usage == {"prompt_tokens": 4, "completion_tokens": 6}
    assert (state.model, state.response_id) == ("base", "cmpl-1")


def test_a_prompt_line_sends_prompt_and_max_tokens() -> None:
    job = line(
        {"prompt": "Once upon a time", "params": {"temperature": 0}},
        Defaults(model="b", api="completions", max_tokens=5),
    )
    assert job.body() == {"temperature": 0, "max_tokens": 5, "model": "b", "prompt": "Once upon a time"}
    assert job.api == "completions"


@pytest.mark.parametrize(
    ("obj", "defaults", "problem"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, DEFAULTS, '"messages" needs --api chat or responses'),
        ({"prompt": "x", "system": "s"}, DEFAULTS, "system message needs --api chat or responses"),
        ({"prompt": "x"}, Defaults(model="b", api="completions", system="s"), "needs --api chat or responses"),
        (
            {"title": "x"},
            Defaults(
                model="b",
                api="completions",
                template=parse_template("{title}"),
                system_template=parse_template("sys", label="--system-template"),
            ),
            "needs --api chat or responses",
        ),
        ({"prompt": "x", "params": {"prompt": "y"}}, DEFAULTS, "may not set prompt"),
    ],
)
def test_chat_only_input_is_refused_for_completions(obj: dict[str, Any], defaults: Defaults, problem: str) -> None:
    with pytest.raises(LineError, match=problem):
        line(obj, defaults)


def test_templates_work_for_every_format() -> None:
    template = parse_template("Say {word}")
    for api, field, value in [
        ("chat", "messages", [{"role": "user", "content": "Say hi"}]),
        ("responses", "input", "Say hi"),
        ("completions", "prompt", "Say hi"),
    ]:
        job = line({"word": "hi"}, Defaults(model="m", api=api, template=template))
        assert job.request[field] == value, api


def test_a_batch_file_may_mix_formats_by_url() -> None:
    chat = line(
        {
            "custom_id": "a",
            "url": "/v1/chat/completions",
            "body": {"model": "m", "messages": [{"role": "user", "content": "x"}]},
        }
    )
    responses = line(
        {"custom_id": "b", "url": "/v1/responses", "body": {"model": "m", "input": "x", "max_output_tokens": 9}}
    )
    completions = line(
        {"custom_id": "c", "url": "/v1/completions", "body": {"model": "m", "prompt": "x", "stream": True}}
    )
    assert (chat.api, responses.api, completions.api) == ("chat", "responses", "completions")
    assert responses.body() == {"max_output_tokens": 9, "model": "m", "input": "x"}
    assert completions.body() == {"model": "m", "prompt": "x"}  # stream is streamdump's to set
    with pytest.raises(LineError, match='"prompt" must be a non-empty string'):
        line({"custom_id": "d", "url": "/v1/completions", "body": {"model": "m"}})


def test_the_format_enters_the_request_hash_only_when_it_is_not_chat() -> None:
    messages = [{"role": "user", "content": "x"}]
    chat = line({"prompt": "x"}, Defaults(model="m"))
    assert chat.request_hash == request_hash("m", messages, {})  # out-dirs written before formats resume
    responses = line({"prompt": "x"}, Defaults(model="m", api="responses"))
    completions = line({"prompt": "x"}, Defaults(model="m", api="completions"))
    assert len({chat.request_hash, responses.request_hash, completions.request_hash}) == 3
    assert completions.request_hash == job_hash("completions", "m", {"prompt": "x"}, {})


def test_the_batch_body_is_a_text_completion() -> None:
    from openai.types import Completion

    entry = {"model": "base", "usage": {"prompt_tokens": 3, "completion_tokens": 4}, "response_id": "cmpl-9"}
    outputs = [
        {"index": 0, "content": "a", "finish_reason": "stop"},
        {"index": 1, "content": "b", "finish_reason": "length"},
    ]
    body = Completion.model_validate(COMPLETIONS.batch_body(entry, outputs, created=1, token="t"))
    assert [(c.index, c.text, c.finish_reason) for c in body.choices] == [(0, "a", "stop"), (1, "b", "length")]
    assert body.id == "cmpl-9" and body.usage is not None and body.usage.total_tokens == 7


def test_a_schema_only_checked_for_completions_enters_the_hash() -> None:
    """Nothing of the schema is sent with text completions, so it must be hashed on its own: a
    run with a new schema redoes items an earlier run found ok without checking them."""
    from streamdump.schema import AnswerSchema

    answer = AnswerSchema("s", {"type": "object"}, strict=False)
    plain = line({"prompt": "x"})
    checked = line({"prompt": "x"}, Defaults(model="base", api="completions", answer_schema=answer))
    assert plain.body() == checked.body()
    assert plain.request_hash != checked.request_hash
    chat = line({"prompt": "x"}, Defaults(model="m", answer_schema=answer))
    assert chat.request_hash == job_hash("chat", "m", chat.request, chat.params)  # sent: in the params
