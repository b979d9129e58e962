"""A wrong endpoint stops the run after its first attempts, with one message that names it.

The servers here are tiny and strict on purpose (a real server's 404 for a path it does not
serve), so these tests do not depend on how lax or strict the simulator is.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from streamdump.simulator import Simulator

from support import Ran, write_jsonl


class Answers:
    """Every request gets ``status`` with ``body`` (bytes) of ``content_type``; requests are counted."""

    def __init__(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.status, self.body, self.content_type = status, body, content_type
        self.requests = 0


@pytest.fixture
def strict_server() -> Iterator[Callable[..., str]]:
    """strict_server(status, body, content_type) -> the base URL of a server that answers only that."""
    servers: list[ThreadingHTTPServer] = []

    def start(status: int, body: bytes, content_type: str = "application/json") -> str:
        answers = Answers(status, body, content_type)

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                answers.requests += 1
                self.send_response(answers.status)
                self.send_header("Content-Type", answers.content_type)
                self.send_header("Content-Length", str(len(answers.body)))
                self.end_headers()
                self.wfile.write(answers.body)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_port}/v1"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    """A port nothing listens on (bound, then closed: connecting is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ten_prompts(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "p.jsonl", [{"id": f"p{n}", "prompt": f"prompt {n}"} for n in range(10)])


def started(ran: Ran) -> int:
    return len(ran.manifest())


def test_a_dead_endpoint_stops_the_run_after_three_attempts_and_names_the_url(
    run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    url = f"http://user:sk-secret@127.0.0.1:{closed_port()}/v1"
    ran = run_cli(ten_prompts(tmp_path), "-c", "1", "--backoff-base", "0", "--base-url", url)
    assert ran.exit_code == 1
    assert ran.stderr.count("stopping:") == 1
    stop = next(line for line in ran.stderr.splitlines() if "stopping:" in line)
    assert f"cannot reach http://127.0.0.1:{url.rsplit(':', 1)[1].split('/')[0]}/v1/chat/completions" in stop
    assert "first 3 attempts failed to connect" in stop and "is the server running" in stop
    assert "sk-secret" not in ran.stderr
    assert started(ran) == 1  # one item, its three attempts; no new item starts
    assert ran.manifest()[0]["attempts"] == 3
    summary = ran.summary()
    assert summary["not_started"] == 9 and "cannot reach" in summary["this_run"]["stopped"]


@pytest.mark.parametrize(
    ("status", "body", "content_type", "says", "kept"),
    [
        (
            404,
            b'{"detail":"Not Found"}',
            "application/json",
            ["HTTP 404 (Not Found)", "end in /v1"],
            {"detail": "Not Found"},
        ),
        (405, b'{"detail":"Method Not Allowed"}', "application/json", ["HTTP 405", "not for POST"], None),
        (404, b"404 page not found\n", "text/plain", ["HTTP 404 (404 page not found)"], "404 page not found"),
        (
            404,
            b'{"error": {"message": "The model `tiny` does not exist.", "type": "NotFoundError", "code": 404}}',
            "application/json",
            ["the server says the model 'tiny' is unknown", "--model"],
            None,
        ),
    ],
)
def test_a_wrong_route_stops_the_run_after_three_requests_with_the_fix(
    run_cli: Callable[..., Ran],
    strict_server: Callable[..., str],
    tmp_path: Path,
    status: int,
    body: bytes,
    content_type: str,
    says: list[str],
    kept: object,
) -> None:
    base = strict_server(status, body, content_type)
    ran = run_cli(ten_prompts(tmp_path), "-c", "1", "-m", "tiny", "--base-url", base)
    assert ran.exit_code == 1
    assert ran.stderr.count("stopping:") == 1
    stop = next(line for line in ran.stderr.splitlines() if "stopping:" in line)
    assert f"the first 3 requests to {base}/chat/completions got HTTP {status}" in stop
    for words in says:
        assert words in stop
    assert started(ran) == 3 and ran.summary()["not_started"] == 7
    error = json.loads((ran.out / "p0.error.json").read_text())["error"]
    assert error["status"] == status
    if kept is not None:
        assert error["body"] == kept  # the server's answer is in the error record


def test_a_model_the_server_does_not_serve_is_not_blamed_on_the_path(
    run_cli: Callable[..., Ran], strict_server: Callable[..., str], tmp_path: Path
) -> None:
    body = b'{"error": {"message": "The model `gpt-5` does not exist", "code": "model_not_found"}}'
    ran = run_cli(ten_prompts(tmp_path), "-c", "1", "-m", "gpt-5", "--base-url", strict_server(404, body))
    stop = next(line for line in ran.stderr.splitlines() if "stopping:" in line)
    assert "model 'gpt-5' is unknown" in stop and "end in /v1" not in stop


def test_transient_failures_at_the_start_are_still_retried(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(faults=["503,times=1"])
    ran = run_cli(ten_prompts(tmp_path), "-c", "3", "--backoff-base", "0", sim=sim)
    assert ran.exit_code == 0, ran.stderr
    assert "stopping" not in ran.stderr
    assert all(entry["attempts"] == 2 for entry in ran.manifest())
