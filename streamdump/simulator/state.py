"""The simulator's configuration and what it records of the requests it serves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .batch_faults import BatchFault
from .script import Fault


@dataclass(frozen=True, slots=True)
class SimConfig:
    tokens_per_second: float = 50.0  # 0: as fast as possible
    ttft: float = 0.2  # seconds before the first token
    length: int = 40  # pieces (words) in each response
    seed: int = 0
    faults: tuple[Fault, ...] = ()
    model: str = "sim-1"  # the model GET /v1/models lists when `models` is empty
    models: tuple[str, ...] = ()  # when set: the only models served; others get 404 model_not_found
    usage: bool = True  # send usage (chat and completions: a usage chunk when asked; responses: in the response)
    zero_usage: bool = False  # usage with every count 0 (as some servers send)
    reject_stream_options: bool = False  # answer 400 to a request that has stream_options
    rpm_limit: int | None = None  # enforce requests per window, with x-ratelimit-* headers and 429s
    rpm_window: float = 60.0
    reasoning: int = 0  # pieces of reasoning before each answer
    reasoning_field: str = "reasoning_content"  # or "reasoning", as newer vLLM names it
    # Responses API streams: False sends `event: TYPE` + `data:` pairs and no [DONE], as OpenAI
    # does; True sends data-only events and a trailing `data: [DONE]`, as LiteLLM and vLLM do.
    responses_data_only: bool = False
    # Responses API reasoning: "summary" (response.reasoning_summary_text.*, as OpenAI sends it)
    # or "text" (response.reasoning_text.*, as open-weight models served by vLLM send it).
    responses_reasoning: str = "summary"
    batch_seconds: float = 0.0  # how long a Batch API batch is in progress (see batches)
    batch_faults: tuple[BatchFault, ...] = ()


@dataclass(slots=True)
class SimRequest:
    """One request to a generation route as the simulator received it."""

    at: float  # time.monotonic() on arrival
    wall: float  # time.time() on arrival
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    prompt: str = ""
    nth: int = 1  # how many requests with this prompt so far, this one included
    fault: str | None = None
    ended: float | None = None  # time.monotonic() when a stream was sent to its end


@dataclass(slots=True)
class SimStats:
    requests: list[SimRequest] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)  # "STATUS METHOD PATH" of each 404/405 for a path
    open_streams: int = 0
    peak_streams: int = 0
    open_connections: int = 0
    peak_connections: int = 0
    connections: int = 0
    rate_limited: int = 0  # 429s sent because of rpm_limit
    errors: list[str] = field(default_factory=list)  # handler crashes (simulator bugs)
