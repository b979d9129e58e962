"""`streamdump check`: ask the endpoint, with at most three tiny requests, whether a run would work.

The requests: ``GET /models``; one short streamed request in the chosen wire format, with a small
output limit in the format's own field; and that request again without ``stream_options`` when
the server refuses it (as a run would).  ``probe`` makes them (I/O) and records what came back;
``judge`` turns that into one point per line (pure).
"""

from __future__ import annotations

import asyncio
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import _constants as C
from .apikey import redacting
from .endpoint import public_url
from .errors import AttemptError
from .firstcontact import Contact, model_unknown
from .sse import EventDecoder, StreamState
from .transport import make_clients, mapped_errors

if TYPE_CHECKING:
    import openai

    from .wire import WireFormat

OPENAI_HOST = "api.openai.com"
PROMPT = "Say OK."


@dataclass(frozen=True, slots=True)
class Point:
    name: str
    ok: bool | None  # None: not checked (an earlier point failed)
    detail: str

    def line(self) -> str:
        mark = {True: "ok  ", False: "FAIL", None: "--  "}[self.ok]
        return f"{mark}  {self.name}: {self.detail}"


@dataclass(slots=True)
class Observed:
    """What the requests got back."""

    models: list[str] | None = None  # the ids /models listed, when it answered with a list
    models_error: AttemptError | None = None
    stream_error: AttemptError | None = None  # the last streamed request's failure, if it failed
    stream_options_refused: AttemptError | None = None  # the first request's refusal, if it was refused
    stream_sent: bool = False
    text: str = ""
    finish_reason: str | None = None
    complete: bool = False
    usage: dict[str, Any] | None = None
    requests: list[str] = field(default_factory=list)  # "GET URL", "POST URL" in order


def limit_field(wire: WireFormat, base_url: str | None) -> str:
    """The output limit's field: the format's own; for OpenAI's chat, max_completion_tokens (its
    reasoning models refuse max_tokens)."""
    if wire.name == "chat" and (base_url is None or urllib.parse.urlsplit(base_url).hostname == OPENAI_HOST):
        return "max_completion_tokens"
    return wire.limit_param


async def probe(
    *, base_url: str | None, api_key: str | None, model: str, wire: WireFormat, deadline: float
) -> Observed:
    """Make the (at most three) requests; never raises for what the server does."""
    seen = Observed()
    [client] = make_clients(base_url, api_key, concurrency=1, attempt_timeout=deadline)
    async with client:
        await _models(client, seen, deadline)
        if _gives_up_after_models(seen.models_error):
            return seen
        include_usage = True
        for _ in range(2):
            seen.stream_error = None
            try:
                await _stream(
                    client,
                    seen,
                    model=model,
                    wire=wire,
                    base_url=base_url,
                    include_usage=include_usage,
                    deadline=deadline,
                )
            except AttemptError as exc:
                seen.stream_error = exc
                if include_usage and wire.rejects_option(exc):
                    seen.stream_options_refused = exc
                    include_usage = False
                    continue
            break
    return seen


def _gives_up_after_models(error: AttemptError | None) -> bool:
    """No use sending the streamed request: the server is unreachable, or refuses the key."""
    if error is None:
        return False
    return error.status in (401, 403) or (error.status is None and error.kind == "connection")


async def _models(client: openai.AsyncOpenAI, seen: Observed, deadline: float) -> None:
    seen.requests.append(f"GET {public_url(str(client.base_url).rstrip('/'))}/models")
    try:
        with mapped_errors(complete=lambda: False):
            async with asyncio.timeout(deadline):
                response = await client.get("/models", cast_to=object)
    except (AttemptError, TimeoutError) as exc:
        seen.models_error = exc if isinstance(exc, AttemptError) else AttemptError("timed out", kind="timeout")
        return
    data = response.get("data") if isinstance(response, dict) else None
    if isinstance(data, list):
        seen.models = [str(item["id"]) for item in data if isinstance(item, dict) and "id" in item]


async def _stream(
    client: openai.AsyncOpenAI,
    seen: Observed,
    *,
    model: str,
    wire: WireFormat,
    base_url: str | None,
    include_usage: bool,
    deadline: float,
) -> None:
    body = {
        **wire.from_prompt(PROMPT, None),
        "model": model,
        limit_field(wire, base_url): C.CHECK_OUTPUT_LIMIT,
        **wire.stream_options(include_usage),
    }
    state = StreamState()
    seen.stream_sent = True
    seen.requests.append(f"POST {public_url(str(client.base_url).rstrip('/'))}")
    text: list[str] = []
    try:
        with mapped_errors(complete=lambda: state.choices.complete):
            async with asyncio.timeout(deadline), wire.open(client, model, body) as response:
                seen.requests[-1] = f"POST {public_url(str(response.http_response.request.url))}"
                decoder = EventDecoder()
                async for data in response.http_response.aiter_bytes():
                    for event, payload in decoder.feed(data):
                        text.append(wire.parse_event(payload, state, event) or "")
                for event, payload in decoder.flush():
                    text.append(wire.parse_event(payload, state, event) or "")
    except TimeoutError:
        raise AttemptError(f"no complete answer within {deadline:g} s", kind="timeout") from None
    except AttemptError as exc:
        if exc.url is not None:  # the route it went to, as the client built it
            seen.requests[-1] = f"POST {exc.url}"
        raise
    seen.text = "".join(text)
    seen.finish_reason = state.finish_reason
    seen.complete = state.choices.complete
    seen.usage = state.usage


def judge(seen: Observed, *, model: str, wire: WireFormat) -> list[Point]:
    """One point per thing a run needs, in the order they depend on each other."""
    points: list[Point] = []
    add = points.append
    models_error, stream_error = seen.models_error, seen.stream_error
    errors = [e for e in (models_error, stream_error) if e is not None]
    if errors and all(e.status is None for e in errors) and seen.models is None and not seen.complete:
        first = errors[0]
        fix = " (is the server running? are the host and port right?)" if first.kind == "connection" else ""
        add(Point("reachable", False, f"{first}{fix}"))
        return [*points, *_not_checked("key accepted", "model served", "streaming works", "usage", "route exists")]
    add(Point("reachable", True, "the server answers"))

    denied = next((e for e in errors if e.status in (401, 403)), None)
    if denied is not None:
        add(Point("key accepted", False, f"{denied} (check the key: --api-key-env names the variable holding it)"))
        return [*points, *_not_checked("model served", "streaming works", "usage", "route exists")]
    add(Point("key accepted", True, "no 401 or 403"))

    route_missing = stream_error is not None and stream_error.status in (404, 405)
    unknown_model = (
        route_missing and stream_error is not None and model_unknown(Contact.of(stream_error, answered=True))
    )
    if unknown_model:
        add(Point("model served", False, f"the server says it is not: {stream_error}{_listing(seen.models)}"))
    elif seen.models is not None and model in seen.models:
        add(Point("model served", True, f"{model!r} is listed by /models"))
    elif seen.complete:
        add(Point("model served", True, f"{model!r} answered" + (" (not listed by /models)" if seen.models else "")))
    elif seen.models:
        add(Point("model served", False, f"{model!r} is not listed by /models{_listing(seen.models)}"))
    else:
        add(Point("model served", None, "the server lists no models, and the request did not get an answer"))

    if route_missing and not unknown_model:
        assert stream_error is not None
        hint = "does the base URL end in /v1 (or whatever your provider's ends in)?"
        if wire.name != "chat":
            hint = f"does this server serve --api {wire.name}? " + hint
        add(Point("streaming works", None, "not checked: the route is missing"))
        add(Point("usage", None, "not checked"))
        add(
            Point(
                "route exists", False, f"{stream_error.url or 'the route'} answered HTTP {stream_error.status}; {hint}"
            )
        )
        return points
    if stream_error is not None:
        add(Point("streaming works", False, str(stream_error)))
    elif not seen.complete:
        add(Point("streaming works", False, "the stream ended without a finish_reason"))
    else:
        said = repr(seen.text[:40]) if seen.text else "an empty answer"
        add(Point("streaming works", True, f"{said}, finish_reason {seen.finish_reason}"))

    if not seen.complete:
        add(Point("usage", None, "not checked"))
    elif seen.usage is not None:
        add(Point("usage", True, "reported in the stream"))
    else:
        add(Point("usage", True, "not reported in the stream: token counts will be estimated with tiktoken"))
    if wire.name == "chat":
        if seen.stream_options_refused is not None:
            add(Point("stream_options accepted", True, "no, refused with a 400: a run asks without it"))
        elif seen.complete:
            add(Point("stream_options accepted", True, "yes"))
        else:
            add(Point("stream_options accepted", None, "not checked"))
    else:
        add(Point("stream_options accepted", True, f"not needed: --api {wire.name} reports usage without it"))
    route = seen.requests[-1] if seen.requests else "the route"
    add(Point("route exists", True if unknown_model or seen.complete or stream_error is not None else None, route))
    return points


def _not_checked(*names: str) -> list[Point]:
    return [Point(name, None, "not checked") for name in names]


def _listing(models: list[str] | None) -> str:
    if not models:
        return ""
    shown = ", ".join(models[:5]) + (f" and {len(models) - 5} more" if len(models) > 5 else "")
    return f"; it lists {shown}"


def works(points: list[Point]) -> bool:
    """A run would work: nothing failed, and the answer came (streaming works)."""
    return all(point.ok is not False for point in points) and any(
        point.name == "streaming works" and point.ok for point in points
    )


def run_check(
    *, base_url: str | None, api_key: str | None, model: str, wire: WireFormat, deadline: float
) -> list[Point]:
    # The key is taken out of every error message (a proxy may quote it back), as in a run.
    with redacting(api_key):
        seen = asyncio.run(probe(base_url=base_url, api_key=api_key, model=model, wire=wire, deadline=deadline))
        return judge(seen, model=model, wire=wire)
