"""Per-choice assembly: reasoning, refusals, tool calls and several choices (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streamdump.choices import ANSWER, REASONING, REFUSAL, Choices
from streamdump.sse import StreamState
from streamdump.wire.chat import FORMAT as CHAT


def collecting(n: int = 1) -> tuple[Choices, list[tuple[str, int, str]]]:
    sunk: list[tuple[str, int, str]] = []
    return Choices(lambda kind, index, text: sunk.append((kind, index, text)), n), sunk


def run(chunks: list[dict[str, Any]], n: int = 1) -> tuple[StreamState, str, list[tuple[str, int, str]]]:
    """Feed chunks through parse_event; return the state, choice 0's text, and what was sunk."""
    choices, sunk = collecting(n)
    state = StreamState(choices=choices)
    text = "".join(CHAT.parse_event(json.dumps(chunk).encode(), state, None) or "" for chunk in chunks)
    return state, text, sunk


def delta(index: int = 0, finish: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"choices": [{"index": index, "delta": fields, "finish_reason": finish}]}


@pytest.mark.parametrize(
    ("chunks", "text", "sunk"),
    [
        # Plain content of choice 0: returned, nothing sunk.
        ([delta(content="a"), delta(content="b")], "ab", []),
        # Role and content together, and the DeepSeek shape (content with a null reasoning field).
        ([delta(role="assistant", content="a"), delta(content="b", reasoning_content=None)], "ab", []),
        # Reasoning under either name; the answer after it.
        (
            [delta(reasoning_content="think "), delta(reasoning_content="more"), delta(content="ans")],
            "ans",
            [(REASONING, 0, "think "), (REASONING, 0, "more")],
        ),
        ([delta(reasoning="r"), delta(content="c")], "c", [(REASONING, 0, "r")]),
        # A server that sends both names carries the same text twice: taken once.
        ([delta(reasoning_content="r", reasoning="r")], "", [(REASONING, 0, "r")]),
        # Reasoning and content in one delta (the switch-over chunk).
        ([delta(reasoning="end", content="start")], "start", [(REASONING, 0, "end")]),
        # A refusal is not answer text.
        ([delta(refusal="I can"), delta(refusal="not.")], "", [(REFUSAL, 0, "I can"), (REFUSAL, 0, "not.")]),
        # Other choices: content is sunk under their own index, in arrival order.
        (
            [delta(0, content="a"), delta(1, content="x"), delta(1, reasoning="y"), delta(0, content="b")],
            "ab",
            [(ANSWER, 1, "x"), (REASONING, 1, "y")],
        ),
        # Non-string fields are ignored rather than written.
        ([delta(reasoning=["x"], refusal=3, content="ok")], "ok", []),
        # Empty deltas and finish chunks carry no text.
        ([delta(), delta(finish="stop")], "", []),
    ],
)
def test_deltas_are_routed_by_kind_and_choice(
    chunks: list[dict[str, Any]], text: str, sunk: list[tuple[str, int, str]]
) -> None:
    _, got_text, got_sunk = run(chunks)
    assert (got_text, got_sunk) == (text, sunk)


def test_several_choices_in_one_chunk() -> None:
    chunk = {
        "choices": [
            {"index": 1, "delta": {"content": "one"}},
            {"index": 0, "delta": {"content": "zero"}},
            {"index": 2, "delta": {"content": "two"}},
        ]
    }
    _, text, sunk = run([chunk], n=3)
    assert text == "zero"
    assert sunk == [(ANSWER, 1, "one"), (ANSWER, 2, "two")]


@pytest.mark.parametrize(
    ("n", "finishes", "complete", "missing"),
    [
        (1, {}, False, []),
        (1, {0: "stop"}, True, []),
        (2, {0: "stop"}, False, [1]),
        (2, {0: "stop", 1: "length"}, True, []),
        (3, {0: "stop", 2: "stop"}, False, [1]),
        (1, {0: "stop", 1: "stop"}, True, []),  # an extra choice nobody asked for, finished
    ],
)
def test_complete_only_when_every_choice_finished(
    n: int, finishes: dict[int, str], complete: bool, missing: list[int]
) -> None:
    chunks = [delta(index, finish=reason) for index, reason in finishes.items()]
    state, _, _ = run(chunks, n=n)
    assert state.choices.complete is complete
    assert state.choices.missing == missing
    assert state.finish_reason == finishes.get(0)


def test_a_choice_seen_but_not_finished_is_incomplete() -> None:
    state, _, _ = run([delta(0, finish="stop"), delta(1, content="x")])
    assert not state.choices.complete
    assert state.choices.indices == [0, 1]


def test_refused_choices_are_remembered() -> None:
    state, _, _ = run([delta(1, refusal="no"), delta(0, content="yes")], n=2)
    assert state.choices.refused == {1}


def fragment(index: int | None = None, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = dict(fields)
    if index is not None:
        out["index"] = index
    return out


def call(id: str | None, name: str | None, arguments: str) -> dict[str, Any]:
    return {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}


@pytest.mark.parametrize(
    ("deltas", "calls"),
    [
        # OpenAI's shape: id, type and name first, then the arguments in pieces.
        (
            [
                [fragment(0, id="c1", type="function", function={"name": "get", "arguments": ""})],
                [fragment(0, function={"arguments": '{"ci'})],
                [fragment(0, function={"arguments": 'ty": "Paris"}'})],
            ],
            [call("c1", "get", '{"city": "Paris"}')],
        ),
        # Two calls interleaved by index.
        (
            [
                [
                    fragment(0, id="a", function={"name": "f", "arguments": "{"}),
                    fragment(1, id="b", function={"name": "g"}),
                ],
                [fragment(1, function={"arguments": "[1]"})],
                [fragment(0, function={"arguments": "}"})],
            ],
            [call("a", "f", "{}"), call("b", "g", "[1]")],
        ),
        # A server that repeats id and name in every fragment: not garbled.
        (
            [
                [fragment(0, id="c", type="function", function={"name": "f", "arguments": "{"})],
                [fragment(0, id="c", type="function", function={"name": "f", "arguments": "}"})],
            ],
            [call("c", "f", "{}")],
        ),
        # Fragments without an index: a new id starts a new call, otherwise the last one goes on.
        (
            [
                [fragment(id="x", function={"name": "f", "arguments": "{"})],
                [fragment(function={"arguments": "}"})],
                [fragment(id="y", function={"name": "g", "arguments": "{}"})],
            ],
            [call("x", "f", "{}"), call("y", "g", "{}")],
        ),
        # A whole call in one fragment (Gemini's shape), with no type given.
        ([[{"index": 0, "id": "z", "function": {"name": "h", "arguments": "{}"}}]], [call("z", "h", "{}")]),
        # Junk in the list is skipped.
        ([["nonsense", fragment(0, function={"arguments": "1"})]], [call(None, None, "1")]),
    ],
)
def test_tool_call_fragments_are_assembled_per_index(
    deltas: list[list[dict[str, Any]]], calls: list[dict[str, Any]]
) -> None:
    state, text, sunk = run([delta(tool_calls=d) for d in deltas] + [delta(finish="tool_calls")])
    assert state.choices.tool_calls(0) == calls
    assert (text, sunk) == ("", [])
    assert state.finish_reason == "tool_calls"


def test_tool_calls_are_kept_per_choice() -> None:
    state, _, _ = run(
        [
            delta(0, tool_calls=[fragment(0, id="a", function={"name": "f", "arguments": "0"})]),
            delta(1, tool_calls=[fragment(0, id="b", function={"name": "f", "arguments": "1"})]),
        ],
        n=2,
    )
    assert state.choices.tool_calls(0) == [call("a", "f", "0")]
    assert state.choices.tool_calls(1) == [call("b", "f", "1")]
    assert state.choices.tool_calls(2) == []
