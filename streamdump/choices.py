"""What each choice of a stream says besides choice 0's answer text. Pure; no I/O.

``sse.parse_event`` keeps the common chunk cheap: a delta that is only ``content`` of choice 0
is returned to the caller at once.  Every other delta comes here, to ``Choices.delta``, which
sends each piece of text to a *sink* as ``(kind, choice index, text)``:

- ``content`` of choice 1, 2, ...  -> ``ANSWER``  (choice 0's content is returned, not sunk)
- ``reasoning_content`` (DeepSeek, SGLang, older vLLM) or ``reasoning`` (newer vLLM, Ollama)
                                   -> ``REASONING``; a server sending both names at once sends
                                      the same text twice, so the first non-empty one is taken
- ``refusal`` (OpenAI)             -> ``REFUSAL``
- ``tool_calls`` fragments         -> assembled here, per choice and per call ``index``

Tool calls are assembled the way the API's own non-streamed message carries them:
``{"id", "type", "function": {"name", "arguments"}}``.  ``arguments`` is concatenated across
fragments; ``id``, ``type`` and ``name`` are taken from the first fragment that has them (some
servers repeat them in every fragment, which concatenation would garble).  A fragment without
an ``index`` continues the last call, unless it brings an ``id`` not seen yet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

ANSWER = "answer"
REASONING = "reasoning"
REFUSAL = "refusal"
REASONING_FIELDS = ("reasoning_content", "reasoning")

Sink = Callable[[str, int, str], None]


class Call(Protocol):
    """A tool call being assembled; each wire format has its own shape of it."""

    def as_json(self) -> dict[str, Any]: ...


C = TypeVar("C", bound=Call)


def _discard(kind: str, index: int, text: str) -> None:
    return None


class ToolCall:
    """One tool call being assembled from its fragments."""

    __slots__ = ("arguments", "id", "name", "type")

    def __init__(self) -> None:
        self.id: str | None = None
        self.type: str | None = None
        self.name: str | None = None
        self.arguments: list[str] = []

    def add(self, fragment: dict[str, Any]) -> None:
        if self.id is None and isinstance(fragment.get("id"), str):
            self.id = fragment["id"]
        if self.type is None and isinstance(fragment.get("type"), str):
            self.type = fragment["type"]
        function = fragment.get("function")
        if isinstance(function, dict):
            if self.name is None and isinstance(function.get("name"), str) and function["name"]:
                self.name = function["name"]
            arguments = function.get("arguments")
            if isinstance(arguments, str) and arguments:
                self.arguments.append(arguments)

    def as_json(self) -> dict[str, Any]:
        """The call as a non-streamed assistant message carries it."""
        return {
            "id": self.id,
            "type": self.type or "function",
            "function": {"name": self.name, "arguments": "".join(self.arguments)},
        }


class Choices:
    """Per-choice state of one stream: finish reasons, refusals, tool calls; text goes to ``sink``.

    ``n`` is how many choices the request asked for.
    """

    __slots__ = ("_calls", "finished", "n", "refused", "seen", "sink")

    def __init__(self, sink: Sink = _discard, n: int = 1) -> None:
        self.sink = sink
        self.n = n
        self.finished: dict[int, str] = {}
        self.seen: set[int] = {0}  # choice 0's file is opened before the first chunk
        self.refused: set[int] = set()
        self._calls: dict[int, dict[int, Call]] = {}

    def delta(self, index: int, delta: dict[str, Any]) -> str | None:
        """Route one delta that is not plain choice-0 content; return choice 0's content, if any."""
        self.seen.add(index)
        for name in REASONING_FIELDS:
            reasoning = delta.get(name)
            if reasoning and isinstance(reasoning, str):
                self.sink(REASONING, index, reasoning)
                break
        refusal = delta.get("refusal")
        if refusal and isinstance(refusal, str):
            self.refused.add(index)
            self.sink(REFUSAL, index, refusal)
        fragments = delta.get("tool_calls")
        if fragments and isinstance(fragments, list):
            self._tool_calls(index, fragments)
        content = delta.get("content")
        if not content or not isinstance(content, str):
            return None
        if index:
            self.sink(ANSWER, index, content)
            return None
        return content

    def finish(self, index: int, reason: str) -> None:
        self.seen.add(index)
        self.finished[index] = reason

    def call(self, index: int, position: int, make: Callable[[], C]) -> C:
        """Choice ``index``'s call at ``position``, made with ``make`` when it is new."""
        self.seen.add(index)
        calls = self._calls.setdefault(index, {})
        call = calls.get(position)
        if call is None:
            call = calls[position] = make()
        return call  # type: ignore[return-value]

    def _tool_calls(self, index: int, fragments: list[Any]) -> None:
        calls = self._calls.setdefault(index, {})
        for fragment in fragments:
            if not isinstance(fragment, dict):
                continue
            position = fragment.get("index")
            if not isinstance(position, int) or isinstance(position, bool):
                last = max(calls, default=None)
                known = {getattr(call, "id", None) for call in calls.values()}
                new_id = fragment.get("id")
                if last is None or (isinstance(new_id, str) and new_id not in known):
                    position = 0 if last is None else last + 1
                else:
                    position = last
            self.call(index, position, ToolCall).add(fragment)

    # -- when the stream has ended ----------------------------------------------------------
    @property
    def indices(self) -> list[int]:
        """Every choice asked for or seen, in order."""
        return sorted(self.seen.union(range(self.n)))

    @property
    def complete(self) -> bool:
        """Every choice asked for, and every choice seen, has a finish_reason."""
        return all(index in self.finished for index in self.indices)

    @property
    def missing(self) -> list[int]:
        """Choices asked for that never appeared at all (a server that ignores ``n``)."""
        return [index for index in range(self.n) if index not in self.seen]

    def tool_calls(self, index: int) -> list[dict[str, Any]]:
        """The assembled tool calls of one choice, in call-index order."""
        calls = self._calls.get(index, {})
        return [calls[position].as_json() for position in sorted(calls)]
