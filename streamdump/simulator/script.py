"""What the simulator says, decided before it says it: deterministic text and fault rules. Pure.

Fault rules, as given to ``streamdump simulate --fault`` (repeatable); every rule works for all
three wire formats (chat, the Responses API, text completions), each saying it its own way::

    KIND[=VALUE][,key=value...]

    status=CODE      answer CODE with a JSON error (429 -> also sends Retry-After when asked)
    429              short for status=429
    drop             close the connection mid-stream, after `after` chunks
    stall=S          stop sending for S seconds after `after` chunks (`ping=P`: a ": ping"
                     comment every P seconds meanwhile), then go on
    sse-error        after `after` chunks send an error event, then end the body (chat and
                     completions: data {"error": ...}; responses: an `error` event with `code`)
    failed           after `after` chunks: responses: a `response.failed` event whose
                     response.error has `code` (default server_error); chat and completions:
                     the error event of sse-error, with that code
    malformed        send a data line that is not JSON after `after` chunks
    truncate         end the body after `after` chunks with no finish and no [DONE]
    eof              like truncate, but the body has neither chunked encoding nor a length
    content-filter   finish after `after` chunks: finish_reason "content_filter" (chat,
                     completions); response.incomplete with reason content_filter (responses)
    refuse           answer with a refusal instead of content (chat: delta.refusal; responses:
                     a refusal part; completions: no effect)
    json             answer with JSON (fitting the request's schema, if it has one) whatever it asks
    invalid-json     answer with JSON cut short by its last character: not JSON
    off-schema       answer with the JSON string "off-schema": JSON, but not the object asked for
    single-choice    answer one choice, whatever n the request asks for (as servers without n do)
    lost-finish      (chat) send every choice's text but only choice 0's finish_reason, then [DONE]
                     (what LiteLLM's proxy does with n > 1)
    split-utf8       send each multi-byte character split across two network writes (harmless)
    linger=S         after the last finish (responses: response.completed), send nothing more
                     for S seconds (no usage, no [DONE], no close)
    echo-auth[=CODE] answer CODE (default 400) with the request's Authorization header in the error
                     message and in an x-echo-authorization header (as some proxies do)
    redirect         answer 307, sending the client to this simulator at /elsewhere/...
    long-line=BYTES  after `after` chunks, send one data line of BYTES bytes that never ends

    keys: match=TEXT   only prompts that contain TEXT (chat: the last user message; responses:
                       the input string or the last user input item's text; completions: the
                       prompt)
          times=K      only the first K requests of each matching prompt (later ones succeed)
          rate=R       only a fraction R of requests (decided by a hash: reproducible)
          after=K      chunks of text to send before the fault (default 0; reasoning, refusal
                       and tool-argument pieces count too)
          code=CODE    the error code of sse-error, failed and status faults
          retry_after=S / retry_after_ms=MS / retry_after_date=S   headers for status faults
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

KINDS = frozenset(
    {
        "status",
        "drop",
        "stall",
        "sse-error",
        "malformed",
        "truncate",
        "eof",
        "content-filter",
        "split-utf8",
        "linger",
        "refuse",
        "json",
        "invalid-json",
        "off-schema",
        "single-choice",
        "lost-finish",
        "echo-auth",
        "redirect",
        "long-line",
        "failed",
    }
)
_FLOAT_KEYS = frozenset({"rate", "retry_after", "retry_after_ms", "retry_after_date", "ping"})
_INT_KEYS = frozenset({"times", "after"})

WORDS = (
    "the",
    "stream",
    "of",
    "tokens",
    "flows",
    "into",
    "a",
    "file",
    "while",
    "model",
    "writes",
    "each",
    "word",
    "as",
    "it",
    "arrives",
    "and",
    "nothing",
    "that",
    "finished",
    "is",
    "lost",
    "café",
    "naïve",
    "über",
    "日本語",
    "テキスト",
    "🙂",
    "résumé",
    "data",
    "batch",
    "prompt",
    "quietly",
    "steady",
    "river",
    "light",
    "north",
    "winter",
    "garden",
    "signal",
    "answer",
)


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str
    value: float | None = None
    match: str | None = None
    times: int | None = None
    rate: float = 1.0
    after: int = 0
    params: dict[str, float] = field(default_factory=dict)
    code: str | None = None  # the error code an sse-error or failed fault sends

    def applies(self, prompt: str, nth: int) -> bool:
        """Does this rule hit the ``nth`` request (1-based) carrying ``prompt``?"""
        if self.match is not None and self.match not in prompt:
            return False
        if self.times is not None and nth > self.times:
            return False
        if self.rate < 1.0:
            digest = hashlib.sha256(f"{self.kind}\0{prompt}\0{nth}".encode()).digest()
            return int.from_bytes(digest[:8], "big") / 2**64 < self.rate
        return True


def parse_fault(spec: str) -> Fault:
    """Parse one ``--fault`` rule. Raises ValueError with a readable message."""
    head, *rest = [part.strip() for part in spec.split(",")]
    kind, _, value = head.partition("=")
    kind = kind.strip().lower()
    if kind.isdigit():
        kind, value = "status", kind
    if kind not in KINDS:
        raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(sorted(KINDS))}")
    number = None
    if value:
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"fault {kind}: {value!r} is not a number") from None
    if kind in ("status", "stall", "linger", "long-line") and number is None:
        raise ValueError(f"fault {kind} needs a value, as in {kind}=" + ("503" if kind == "status" else "5"))
    options: dict[str, object] = {}
    params: dict[str, float] = {}
    for item in rest:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep:
            raise ValueError(f"fault option {item!r} should be key=value")
        try:
            if key in ("match", "code"):
                options[key] = raw
            elif key in _INT_KEYS:
                options[key] = int(raw)
            elif key in _FLOAT_KEYS:
                (options if key == "rate" else params)[key] = float(raw)
            else:
                raise ValueError(f"unknown fault option {key!r}")
        except ValueError as exc:
            if "unknown" in str(exc):
                raise
            raise ValueError(f"fault option {key}: {raw!r} is not a number") from None
    return Fault(kind=kind, value=number, params=params, **options)  # type: ignore[arg-type]


def pick_fault(faults: list[Fault], prompt: str, nth: int) -> Fault | None:
    """The first rule that hits this request, if any."""
    for fault in faults:
        if fault.applies(prompt, nth):
            return fault
    return None


def response_pieces(prompt: str, *, length: int, seed: int = 0) -> list[str]:
    """The deterministic answer to ``prompt``: ``length`` pieces, each one word and a space."""
    rng = random.Random(hashlib.sha256(f"{seed}\0{prompt}".encode("utf-8", "surrogatepass")).digest())
    pieces = [rng.choice(WORDS) + " " for _ in range(length)]
    if pieces:
        pieces[0] = pieces[0].capitalize()
        pieces[-1] = pieces[-1].rstrip() + "."
    return pieces


def count_tokens_roughly(text: str) -> int:
    """The simulator's own token count: words, at least one."""
    return max(1, len(text.split()))
