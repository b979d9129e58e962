"""The fast simulator (``streamdump simulate --fast``): same text as the ordinary one, through the
real client; one ticker; a timeline of when each piece went out."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from streamdump.cli import app
from streamdump.simulator import SimConfig
from streamdump.simulator.fast import FastSimulator, build_frames
from streamdump.simulator.script import response_pieces
from streamdump.sse import EventDecoder, StreamState
from streamdump.wire.chat import FORMAT as CHAT

from support import Ran, expected_text, write_jsonl


@pytest.fixture
def start_fast() -> Iterator[Callable[..., FastSimulator]]:
    """start_fast(timeline=False, **config) -> a FastSimulator serving from its own thread."""
    started: list[tuple[FastSimulator, asyncio.AbstractEventLoop, threading.Thread]] = []

    def start(*, timeline: bool = False, **config: Any) -> FastSimulator:
        sim = FastSimulator(
            SimConfig(**{"tokens_per_second": 200, "ttft": 0, "length": 12, **config}), timeline=timeline
        )
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


def _decode(frames: list[bytes]) -> tuple[str, StreamState]:
    """Undo the chunked framing and read the stream as streamdump does."""
    raw = b"".join(frames)
    body = b""
    while raw:
        size_line, _, raw = raw.partition(b"\r\n")
        size = int(size_line, 16)
        body, raw = body + raw[:size], raw[size + 2 :]
        if size == 0:
            break
    decoder, state, text = EventDecoder(), StreamState(), ""
    for event, payload in [*decoder.feed(body), *decoder.flush()]:
        text += CHAT.parse_event(payload, state, event) or ""
    return text, state


def test_frames_carry_the_deterministic_text_then_finish_usage_and_done() -> None:
    body = {"messages": [{"role": "user", "content": "hello there"}], "stream_options": {"include_usage": True}}
    frames = build_frames(body, SimConfig(length=9), 1)
    assert len(frames) == 1 + 9  # the role chunk, then one write per piece
    text, state = _decode(frames)
    assert text == expected_text("hello there", 9)
    assert state.finish_reason == "stop" and state.done
    assert state.usage == {"prompt_tokens": 2, "completion_tokens": 9}  # as streamdump records it


def test_max_tokens_cuts_the_answer_with_finish_reason_length() -> None:
    body = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 3}
    text, state = _decode(build_frames(body, SimConfig(length=9), 1))
    assert text == "".join(response_pieces("hello", length=9)[:3])
    assert state.finish_reason == "length" and state.usage is None


def test_streamdump_runs_against_it(
    start_fast: Callable[..., FastSimulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_fast(timeline=True)
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": f"i{n}", "prompt": f"prompt {n}"} for n in range(10)])
    ran = run_cli(prompts, "-c", "4", "--base-url", sim.base_url)
    assert ran.exit_code == 0, ran.stderr
    for n in range(10):
        assert (ran.out / f"i{n}.txt").read_text() == expected_text(f"prompt {n}")
    assert all(entry["usage"]["completion_tokens"] == 12 for entry in ran.manifest())
    assert sim.requests == 10 and sim.peak_streams == 4 and sim.open_streams == 0
    # Every stream began on a recorded tick, and ticks went out in order.
    assert set(sim.joined) == {f"prompt {n}" for n in range(10)}
    assert all(1 <= tick <= len(sim.tick_times) for tick in sim.joined.values())
    assert sim.tick_times == sorted(sim.tick_times)


def test_a_client_hanging_up_mid_stream_leaves_the_others_streaming(
    start_fast: Callable[..., FastSimulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_fast(length=400)
    body = json.dumps({"stream": True, "messages": [{"role": "user", "content": "bye"}]}).encode()
    with socket.create_connection(("127.0.0.1", sim.port)) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "after", "prompt": "after"}])
    ran = run_cli(prompts, "--max-tokens", "5", "--base-url", sim.base_url)
    assert ran.exit_code == 0, ran.stderr
    assert sim.requests == 2 and sim.open_streams == 0


def test_fast_refuses_faults() -> None:
    result = CliRunner().invoke(app, ["simulate", "--fast", "--fault", "drop"])
    assert result.exit_code == 2
    assert "--fast" in result.stderr
