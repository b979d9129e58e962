"""What the simulator answers: several choices, tool calls, reasoning, refusals (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streamdump.simulator.replies import REFUSAL, Style, interleave, reply
from streamdump.simulator.script import response_pieces

USER = [{"role": "user", "content": "hi"}]
TOOLS = [{"type": "function", "function": {"name": "lookup"}}, {"type": "function", "function": {"name": "save"}}]


def text(deltas: list[dict[str, Any]], key: str) -> str:
    return "".join(d[key] for d in deltas if key in d)


def test_a_plain_request_answers_as_before() -> None:
    (choice,) = reply("hi", {"messages": USER}, Style(length=5))
    assert text(choice.deltas, "content") == "".join(response_pieces("hi", length=5))
    assert (choice.index, choice.finish, choice.tokens) == (0, "stop", 5)


@pytest.mark.parametrize(
    ("body", "style", "finish", "kinds"),
    [
        ({}, Style(length=4), "stop", ["content"] * 4),
        ({"max_tokens": 2}, Style(length=4), "length", ["content"] * 2),
        ({}, Style(length=2, reasoning=3), "stop", ["reasoning_content"] * 3 + ["content"] * 2),
        ({}, Style(length=2, reasoning=1, reasoning_field="reasoning"), "stop", ["reasoning", "content", "content"]),
        # max_tokens counts reasoning too: a model can run out while still thinking.
        ({"max_tokens": 2}, Style(length=4, reasoning=3), "length", ["reasoning_content"] * 2),
        ({"max_tokens": 4}, Style(length=4, reasoning=3), "length", ["reasoning_content"] * 3 + ["content"]),
        ({}, Style(length=4, refuse=True), "stop", ["refusal"] * len(REFUSAL.split())),
        ({"tools": TOOLS, "tool_choice": "none"}, Style(length=3), "stop", ["content"] * 3),
    ],
)
def test_what_one_choice_streams(body: dict[str, Any], style: Style, finish: str, kinds: list[str]) -> None:
    (choice,) = reply("p", {"messages": USER, **body}, style)
    assert choice.finish == finish
    assert [next(iter(d)) for d in choice.deltas] == kinds


def test_refusal_text() -> None:
    (choice,) = reply("p", {}, Style(refuse=True))
    assert text(choice.deltas, "refusal") == REFUSAL
    assert choice.message("reasoning_content") == {"role": "assistant", "content": None, "refusal": REFUSAL}


@pytest.mark.parametrize(("parallel", "names"), [(None, ["lookup", "save"]), (False, ["lookup"])])
def test_tool_calls_stream_in_fragments(parallel: bool | None, names: list[str]) -> None:
    body: dict[str, Any] = {"tools": TOOLS}
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    (choice,) = reply("naïve 日本語", body, Style())
    assert choice.finish == "tool_calls"
    assert [call["function"]["name"] for call in choice.tool_calls] == names
    for position, call in enumerate(choice.tool_calls):
        fragments = [f for d in choice.deltas for f in d["tool_calls"] if f["index"] == position]
        assert fragments[0]["id"] == call["id"] and fragments[0]["function"]["name"] == call["function"]["name"]
        assert len(fragments) > 2
        arguments = "".join(f["function"]["arguments"] for f in fragments)
        assert arguments == call["function"]["arguments"]
        assert json.loads(arguments)["query"] == "naïve 日本語"


def test_several_choices_differ_and_interleave() -> None:
    choices = reply("p", {"n": 3}, Style(length=4))
    assert [c.index for c in choices] == [0, 1, 2]
    texts = [text(c.deltas, "content") for c in choices]
    assert texts[0] == "".join(response_pieces("p", length=4))
    assert len(set(texts)) == 3
    steps = interleave(choices)
    assert [index for index, _ in steps[:6]] == [0, 1, 2, 0, 1, 2]
    assert len(steps) == 12


def test_interleave_with_uneven_choices() -> None:
    choices = reply("p", {"n": 2, "max_tokens": 4}, Style(length=2, reasoning=3))
    assert [len(c.deltas) for c in choices] == [4, 4]
    short = reply("p", {}, Style(length=1))[0]
    long = reply("q", {}, Style(length=3))[0]
    long.index = 1
    assert [index for index, _ in interleave([short, long])] == [0, 1, 1, 1]
