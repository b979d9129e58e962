"""What the simulator answers a request with, choice by choice, as deltas. Pure.

The request decides most of it, as a real server's would:

- ``n``: that many choices, their deltas interleaved by ``index``; choice 0 says what a request
  without ``n`` would get, choice k its own deterministic text;
- ``tools`` (unless ``tool_choice`` is ``"none"``): each choice calls every tool (only the first
  with ``parallel_tool_calls: false``), its JSON arguments streamed in fragments, and finishes
  with ``tool_calls``;
- ``max_tokens`` / ``max_completion_tokens`` / ``max_output_tokens``: reasoning and answer pieces
  together stop there, with ``length`` (a JSON answer is cut off mid-JSON);
- ``response_format`` (chat) or ``text.format`` (responses) of type ``json_schema``: the answer
  is JSON that fits the schema (see ``instances``), in pieces of ``JSON_PIECE`` characters;
  ``json_object``: a JSON object ``{"answer": ...}``.

The simulator's configuration adds reasoning (``reasoning`` pieces before the answer, under the
field ``reasoning_field``); a ``refuse`` fault turns the answer into a refusal; a ``json`` fault
answers JSON whatever the request asks, ``invalid-json`` answers JSON without its last character
(not JSON), and ``off-schema`` answers the JSON string ``"off-schema"`` (JSON, but no object).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any

from ..schema import requested_schema
from .instances import instance
from .script import WORDS, response_pieces

REFUSAL = "I'm sorry, but I can't help with that."
REASONING_FIELDS = ("reasoning_content", "reasoning")
ARGUMENT_PIECE = 8  # characters of tool-call arguments per fragment
JSON_PIECE = 6  # characters of a JSON answer per piece
JSON_FAULTS = frozenset({"json", "invalid-json", "off-schema"})
# The answer to a json_object request (or a json fault on a request without a schema).
ANY_OBJECT = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


@dataclass(frozen=True, slots=True)
class Style:
    """How the simulator answers, apart from the request itself."""

    length: int = 40
    seed: int = 0
    reasoning: int = 0  # reasoning pieces per choice
    reasoning_field: str = "reasoning_content"
    refuse: bool = False
    fault: str | None = None  # the kind of the fault hitting this request, if any


@dataclass(slots=True)
class Choice:
    """One choice's deltas (after the role chunk), its finish_reason, and what it adds up to."""

    index: int
    deltas: list[dict[str, Any]] = field(default_factory=list)
    finish: str = "stop"
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        """Pieces sent, counted as tokens (tool-call fragments included)."""
        return len(self.deltas)

    def message(self, reasoning_field: str) -> dict[str, Any]:
        """The non-streamed message these deltas add up to."""
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.content) or None}
        if self.reasoning:
            message[reasoning_field] = "".join(self.reasoning)
        if self.refusal:
            message["refusal"] = "".join(self.refusal)
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        return message


def reasoning_pieces(prompt: str, *, length: int, seed: int = 0, choice: int = 0) -> list[str]:
    """The deterministic reasoning before the answer: ``length`` pieces, each a word and a space."""
    key = f"{seed}\0reasoning\0{choice}\0{prompt}".encode("utf-8", "surrogatepass")
    rng = random.Random(hashlib.sha256(key).digest())
    return [rng.choice(WORDS) + " " for _ in range(length)]


def answer_pieces(prompt: str, *, length: int, seed: int = 0, choice: int = 0) -> list[str]:
    """Choice 0 answers as ``response_pieces`` does; choice k has text of its own."""
    return response_pieces(prompt if choice == 0 else f"{prompt}\0choice {choice}", length=length, seed=seed)


def tool_arguments(prompt: str, name: str, choice: int) -> str:
    return json.dumps({"tool": name, "query": prompt[:60], "choice": choice}, ensure_ascii=False)


def _tools(body: dict[str, Any]) -> list[str]:
    """Names of the tools this request lets the model call, in order."""
    if body.get("tool_choice") == "none":
        return []
    names = []
    for tool in body.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.append(function["name"])
    if body.get("parallel_tool_calls") is False:
        names = names[:1]
    return names


def json_pieces(prompt: str, body: dict[str, Any], style: Style, choice: int = 0) -> list[str] | None:
    """A JSON answer, in pieces, when the request (or a JSON fault) asks for one; else ``None``."""
    wanted = requested_schema("responses" if isinstance(body.get("text"), dict) else "chat", body)
    if wanted is None and style.fault not in JSON_FAULTS:
        return None
    schema = wanted if isinstance(wanted, dict) else ANY_OBJECT
    key = f"{style.seed}\0json\0{choice}\0{prompt}".encode("utf-8", "surrogatepass")
    value = instance(schema, random.Random(hashlib.sha256(key).digest()))
    text = json.dumps(value, ensure_ascii=False)
    if style.fault == "invalid-json":
        text = text[:-1] or "{"
    elif style.fault == "off-schema":
        text = json.dumps("off-schema")
    return [text[start : start + JSON_PIECE] for start in range(0, len(text), JSON_PIECE)]


def _limit(body: dict[str, Any]) -> int | None:
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or body.get("max_output_tokens")
    return limit if isinstance(limit, int) and limit > 0 else None


def choice_reply(prompt: str, body: dict[str, Any], style: Style, index: int) -> Choice:
    choice = Choice(index)
    budget = _limit(body)
    if style.reasoning:
        thoughts = reasoning_pieces(prompt, length=style.reasoning, seed=style.seed, choice=index)
        if budget is not None and budget < len(thoughts):
            thoughts, choice.finish = thoughts[:budget], "length"
        choice.reasoning = thoughts
        choice.deltas += [{style.reasoning_field: piece} for piece in thoughts]
        budget = None if budget is None else budget - len(thoughts)
    if choice.finish == "length":
        return choice
    tools = _tools(body)
    if style.refuse:
        choice.refusal = [word + " " for word in REFUSAL.split(" ")]
        choice.refusal[-1] = choice.refusal[-1].rstrip()
        choice.deltas += [{"refusal": piece} for piece in choice.refusal]
    elif tools:
        for position, name in enumerate(tools):
            call_id = "call_" + hashlib.sha256(f"{prompt}\0{index}\0{position}".encode()).hexdigest()[:12]
            arguments = tool_arguments(prompt, name, index)
            choice.tool_calls.append(
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            )
            head = {"index": position, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
            choice.deltas.append({"tool_calls": [head]})
            for start in range(0, len(arguments), ARGUMENT_PIECE):
                piece = arguments[start : start + ARGUMENT_PIECE]
                choice.deltas.append({"tool_calls": [{"index": position, "function": {"arguments": piece}}]})
        choice.finish = "tool_calls"
    else:
        pieces = json_pieces(prompt, body, style, index)
        if pieces is None:
            pieces = answer_pieces(prompt, length=style.length, seed=style.seed, choice=index)
        if budget is not None and budget < len(pieces):
            pieces, choice.finish = pieces[:budget], "length"
        choice.content = pieces
        choice.deltas += [{"content": piece} for piece in pieces]
    return choice


def reply(prompt: str, body: dict[str, Any], style: Style) -> list[Choice]:
    """Every choice the request asked for."""
    n = body.get("n")
    count = n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1
    return [choice_reply(prompt, body, style, index) for index in range(count)]


def interleave(choices: list[Choice]) -> list[tuple[int, dict[str, Any]]]:
    """The deltas of every choice as they are sent: round-robin by index."""
    steps = []
    for position in range(max((len(choice.deltas) for choice in choices), default=0)):
        for choice in choices:
            if position < len(choice.deltas):
                steps.append((choice.index, choice.deltas[position]))
    return steps
