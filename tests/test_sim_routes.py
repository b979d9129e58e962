"""The simulator is as strict as a real server: exact paths, 404 and 405 with OpenAI's error bodies,
and (when told which) only the models it serves."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from openai import AsyncOpenAI

from streamdump.simulator import SimConfig, Simulator
from streamdump.simulator.fast import FastSimulator
from streamdump.simulator.routes import Match, Miss, RouteTable

from support import Ran, expected_text, write_jsonl


def _table() -> RouteTable[str]:
    table: RouteTable[str] = RouteTable()
    table.add("POST", "/v1/chat/completions", "chat")
    table.add("GET", "/v1/models", "models")
    table.add("GET", "/v1/models/{model}", "model")
    table.add("GET", "/v1/batches/{batch_id}", "batch")
    table.add("POST", "/v1/batches/{batch_id}/cancel", "cancel")
    return table


@pytest.mark.parametrize(
    ("method", "path", "found"),
    [
        ("POST", "/v1/chat/completions", Match("chat", {})),
        ("GET", "/v1/models", Match("models", {})),
        ("GET", "/v1/models/gpt-x", Match("model", {"model": "gpt-x"})),
        ("POST", "/v1/batches/batch_1/cancel", Match("cancel", {"batch_id": "batch_1"})),
        ("GET", "/v1/batches/batch_1", Match("batch", {"batch_id": "batch_1"})),
        ("POST", "/chat/completions", Miss(404)),  # a base URL without /v1
        ("POST", "/v1/v1/chat/completions", Miss(404)),  # ... or with it twice
        ("POST", "/v1/chat/completions/", Miss(404)),
        ("POST", "/v1/chat", Miss(404)),
        ("GET", "/v1/models/", Miss(404)),  # an empty {model}
        ("GET", "/v1/chat/completions", Miss(405, ("POST",))),
        ("POST", "/v1/models", Miss(405, ("GET",))),
        ("DELETE", "/v1/batches/b", Miss(405, ("GET",))),
    ],
)
def test_routes_match_exact_paths(method: str, path: str, found: Match[str] | Miss) -> None:
    assert _table().match(method, path) == found


def test_a_later_route_for_the_same_path_and_method_wins() -> None:
    table = _table()
    table.add("POST", "/v1/chat/completions", "mine")
    table.add("PUT", "/v1/models", "put")
    assert table.match("POST", "/v1/chat/completions") == Match("mine", {})
    assert table.match("DELETE", "/v1/models") == Miss(405, ("GET", "PUT"))


def _openai_error(message: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}


@pytest.mark.parametrize(
    ("method", "path", "status", "message", "allow"),
    [
        ("POST", "/v1/foo", 404, "Invalid URL (POST /v1/foo)", None),
        ("POST", "/chat/completions", 404, "Invalid URL (POST /chat/completions)", None),
        ("POST", "/v1/responses/", 404, "Invalid URL (POST /v1/responses/)", None),
        ("GET", "/", 404, "Invalid URL (GET /)", None),
        ("GET", "/v1/chat/completions", 405, "Invalid method for URL (GET /v1/chat/completions)", "POST"),
        ("GET", "/v1/responses", 405, "Invalid method for URL (GET /v1/responses)", "POST"),
        ("PUT", "/v1/completions", 405, "Invalid method for URL (PUT /v1/completions)", "POST"),
        ("POST", "/v1/models", 405, "Invalid method for URL (POST /v1/models)", "GET"),
    ],
)
def test_unknown_paths_and_methods_get_openai_errors(
    sim: Simulator, method: str, path: str, status: int, message: str, allow: str | None
) -> None:
    reply = httpx2.request(method, f"http://127.0.0.1:{sim.port}{path}", json={"stream": True}, timeout=10)
    assert reply.status_code == status
    assert reply.json() == _openai_error(message)
    assert reply.headers.get("allow") == allow
    assert sim.stats.misses == [f"{status} {method} {path}"]
    assert sim.stats.requests == []


def test_the_served_paths_answer(sim: Simulator) -> None:
    root = f"http://127.0.0.1:{sim.port}"
    assert httpx2.get(root + "/_sim/stats").json()["requests"] == 0
    assert [m["id"] for m in httpx2.get(root + "/v1/models").json()["data"]] == ["sim-1"]
    assert httpx2.get(root + "/v1/models/anything").json()["id"] == "anything"
    for path, body in [
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]}),
        ("/v1/responses", {"input": "x"}),
        ("/v1/completions", {"prompt": "x"}),
    ]:
        assert httpx2.post(root + path + "?api-version=1", json=body).status_code == 200, path
    assert sim.stats.misses == [] and len(sim.stats.requests) == 3


def test_a_body_that_is_not_json_is_a_400(sim: Simulator) -> None:
    reply = httpx2.post(sim.base_url + "/chat/completions", content=b"{nope", timeout=10)
    assert reply.status_code == 400
    assert reply.json()["error"]["type"] == "invalid_request_error"


def test_only_the_served_models_when_told_which(start_sim: Callable[..., Simulator]) -> None:
    sim = start_sim(models=("base-7b", "chat-7b"))

    async def main() -> tuple[list[str], str, openai.NotFoundError, openai.NotFoundError]:
        async with AsyncOpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=0) as client:
            listed = [model.id async for model in client.models.list()]
            done = await client.completions.create(model="base-7b", prompt="x")
            with pytest.raises(openai.NotFoundError) as wrong:
                await client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])
            with pytest.raises(openai.NotFoundError) as unknown:
                await client.models.retrieve("gpt-9")
            return listed, done.choices[0].text, wrong.value, unknown.value

    listed, text, wrong, unknown = asyncio.run(main())
    assert listed == ["base-7b", "chat-7b"]
    assert text == expected_text("x")
    assert wrong.code == unknown.code == "model_not_found"
    assert (
        wrong.body
        == _openai_error("The model `gpt-9` does not exist or you do not have access to it.", "model_not_found")[
            "error"
        ]
    )
    assert [request.fault for request in sim.stats.requests] == [None, "model_not_found"]


def test_a_rehearsal_catches_a_base_url_without_v1(sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "a"}])
    ran = run_cli(prompts, "--max-retries", "0", "--base-url", sim.base_url.removesuffix("/v1"))
    assert ran.exit_code != 0
    assert not (ran.out / "a.txt").exists()
    assert sim.stats.misses and set(sim.stats.misses) == {"404 POST /chat/completions"}
    assert sim.stats.requests == []


# -- the fast simulator --------------------------------------------------------------------------
@pytest.fixture
def start_fast() -> Iterator[Callable[..., FastSimulator]]:
    """start_fast(**config) -> a FastSimulator serving from its own thread."""
    started: list[tuple[FastSimulator, asyncio.AbstractEventLoop, threading.Thread]] = []

    def start(**config: Any) -> FastSimulator:
        sim = FastSimulator(SimConfig(**{"tokens_per_second": 0, "ttft": 0, "length": 4, **config}))
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        asyncio.run_coroutine_threadsafe(sim.start(), loop).result(timeout=10)
        started.append((sim, loop, thread))
        return sim

    yield start
    for sim, loop, thread in started:
        asyncio.run_coroutine_threadsafe(sim.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("POST", "/chat/completions", 404, None),
        ("POST", "/v1/responses", 404, None),
        ("GET", "/v1/chat/completions", 405, "POST"),
    ],
)
def test_the_fast_simulator_is_as_strict(
    start_fast: Callable[..., FastSimulator], method: str, path: str, status: int, allow: str | None
) -> None:
    fast = start_fast()
    reply = httpx2.request(method, f"http://127.0.0.1:{fast.port}{path}", json={"stream": True}, timeout=10)
    assert reply.status_code == status
    assert reply.headers.get("allow") == allow
    assert reply.json()["error"]["type"] == "invalid_request_error"
    assert fast.requests == 0
    body = {"stream": True, "messages": [{"role": "user", "content": "x"}]}
    assert httpx2.post(fast.base_url + "/chat/completions", json=body, timeout=10).status_code == 200


def test_the_fast_simulator_serves_only_the_models_it_is_told(start_fast: Callable[..., FastSimulator]) -> None:
    fast = start_fast(models=("base-7b",))
    body = {"stream": True, "messages": [{"role": "user", "content": "x"}]}
    wrong = httpx2.post(fast.base_url + "/chat/completions", json={"model": "gpt-9", **body}, timeout=10)
    assert wrong.status_code == 404 and wrong.json()["error"]["code"] == "model_not_found"
    right = httpx2.post(fast.base_url + "/chat/completions", json={"model": "base-7b", **body}, timeout=10)
    assert right.status_code == 200 and fast.requests == 1
    assert [m["id"] for m in httpx2.get(fast.base_url + "/models").json()["data"]] == ["base-7b"]
