"""`streamdump check`: at most three tiny requests, one line per point, exit 0 when a run would work."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from streamdump.check import Observed, judge, limit_field
from streamdump.cli import app
from streamdump.errors import FatalRequestError
from streamdump.simulator import Simulator
from streamdump.wire import wire_for


def check(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    """(exit code, point name -> its line, the whole output)."""
    result = CliRunner().invoke(app, ["check", *args], env=env)
    lines = {}
    for line in result.stdout.splitlines():
        mark, _, rest = line.partition("  ")
        if mark in ("ok", "FAIL", "--") and ": " in rest:
            lines[rest.strip().split(": ", 1)[0]] = line
    return result.exit_code, lines, result.stdout + result.stderr


POINTS = ["reachable", "key accepted", "model served", "streaming works", "usage", "route exists"]


def test_a_working_endpoint_passes_every_point(start_sim: Callable[..., Simulator]) -> None:
    sim = start_sim()
    code, lines, out = check("--base-url", sim.base_url, "-m", "sim-1")
    assert code == 0, out
    for name in [*POINTS, "stream_options accepted"]:
        assert lines[name].startswith("ok"), out
    assert "listed by /models" in lines["model served"]
    assert "reported in the stream" in lines["usage"]
    assert out.rstrip().endswith("a run would work")
    [request] = sim.stats.requests  # GET /models is not recorded: one POST
    body = request.body
    assert body is not None and body["max_tokens"] == 16 and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_usage_not_reported_is_a_pass_with_estimates(start_sim: Callable[..., Simulator]) -> None:
    code, lines, out = check("--base-url", start_sim(usage=False).base_url, "-m", "sim-1")
    assert code == 0, out
    assert lines["usage"].startswith("ok") and "estimated" in lines["usage"]


def test_stream_options_refused_is_asked_again_without_it(start_sim: Callable[..., Simulator]) -> None:
    sim = start_sim(reject_stream_options=True)
    code, lines, out = check("--base-url", sim.base_url, "-m", "sim-1")
    assert code == 0, out
    assert "refused" in lines["stream_options accepted"]
    assert len(sim.stats.requests) == 2  # with GET /models: three requests in all
    assert "stream_options" not in (sim.stats.requests[1].body or {})


def test_an_empty_answer_cut_by_the_limit_passes(start_sim: Callable[..., Simulator]) -> None:
    code, lines, out = check("--base-url", start_sim(length=0, reasoning=40).base_url, "-m", "sim-1")
    assert code == 0, out
    assert "an empty answer, finish_reason length" in lines["streaming works"]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_endpoint_fails_at_once() -> None:
    code, lines, _out = check("--base-url", f"http://127.0.0.1:{closed_port()}/v1")
    assert code == 1
    assert lines["reachable"].startswith("FAIL") and "server running" in lines["reachable"]
    assert all(lines[name].startswith("--") for name in POINTS[1:])


@pytest.fixture
def strict_server() -> Iterator[Callable[..., tuple[str, list[str]]]]:
    """strict_server({(method, path): (status, body)}) -> (base URL, requests seen): 404 for the rest."""
    servers: list[ThreadingHTTPServer] = []

    def start(routes: dict[tuple[str, str], tuple[int, Any]]) -> tuple[str, list[str]]:
        seen: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                seen.append(f"{self.command} {self.path}")
                status, body = routes.get((self.command, self.path), (404, {"detail": "Not Found"}))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_port}/v1", seen

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


MODELS = (200, {"object": "list", "data": [{"id": "served-model", "object": "model"}]})


def test_a_refused_key_fails_and_stops_asking(strict_server: Callable[..., tuple[str, list[str]]]) -> None:
    base, seen = strict_server({("GET", "/v1/models"): (401, {"error": {"message": "Incorrect API key"}})})
    code, lines, out = check("--base-url", base, env={"OPENAI_API_KEY": "sk-wrong"})
    assert code == 1
    assert lines["key accepted"].startswith("FAIL") and "Incorrect API key" in lines["key accepted"]
    assert seen == ["GET /v1/models"]
    assert "sk-wrong" not in out


@pytest.mark.parametrize("api", ["responses", "completions", "chat"])
def test_a_missing_route_fails_and_says_which(strict_server: Callable[..., tuple[str, list[str]]], api: str) -> None:
    base, seen = strict_server({("GET", "/v1/models"): MODELS})
    code, lines, _out = check("--base-url", base, "--api", api, "-m", "served-model")
    assert code == 1
    route = {"chat": "chat/completions"}.get(api, api)
    assert lines["route exists"].startswith("FAIL") and f"{base}/{route} answered HTTP 404" in lines["route exists"]
    assert lines["model served"].startswith("ok")
    assert len(seen) == 2


def test_a_model_the_server_does_not_list_or_serve_fails(strict_server: Callable[..., tuple[str, list[str]]]) -> None:
    unknown = (404, {"error": {"message": "The model `other` does not exist.", "type": "NotFoundError"}})
    base, _ = strict_server({("GET", "/v1/models"): MODELS, ("POST", "/v1/chat/completions"): unknown})
    code, lines, _out = check("--base-url", base, "-m", "other")
    assert code == 1
    assert lines["model served"].startswith("FAIL") and "served-model" in lines["model served"]
    assert "route exists" not in lines or not lines["route exists"].startswith("FAIL")


def test_check_refuses_bad_usage_before_sending() -> None:
    result = CliRunner().invoke(app, ["check", "--base-url", "localhost:8000/v1"])
    assert result.exit_code == 2 and "try http://localhost:8000/v1" in result.stderr
    result = CliRunner().invoke(app, ["check", "--base-url", "http://h/v1", "--api", "nope"])
    assert result.exit_code == 2 and "--api" in result.stderr


@pytest.mark.parametrize(
    ("api", "base_url", "field"),
    [
        ("chat", "http://localhost:8000/v1", "max_tokens"),
        ("chat", None, "max_completion_tokens"),
        ("chat", "https://api.openai.com/v1", "max_completion_tokens"),
        ("responses", None, "max_output_tokens"),
        ("completions", "http://localhost:8000/v1", "max_tokens"),
    ],
)
def test_the_output_limit_goes_in_the_formats_own_field(api: str, base_url: str | None, field: str) -> None:
    assert limit_field(wire_for(api), base_url) == field


def test_judging_a_stream_that_never_finished() -> None:
    seen = Observed(models=["m"], stream_sent=True, requests=["GET x", "POST y"])
    points = {p.name: p for p in judge(seen, model="m", wire=wire_for("chat"))}
    assert points["streaming works"].ok is False and "finish_reason" in points["streaming works"].detail
    seen = Observed(models=None, stream_sent=True, stream_error=FatalRequestError("HTTP 400: bad", status=400))
    points = {p.name: p for p in judge(seen, model="m", wire=wire_for("chat"))}
    assert points["streaming works"].ok is False and points["reachable"].ok is True


@pytest.mark.parametrize(("api", "field"), [("responses", "max_output_tokens"), ("completions", "max_tokens")])
def test_the_other_formats_are_checked_in_their_own_words(
    start_sim: Callable[..., Simulator], api: str, field: str
) -> None:
    sim = start_sim()
    code, lines, out = check("--base-url", sim.base_url, "--api", api, "-m", "sim-1")
    assert code == 0, out
    assert lines["route exists"].startswith("ok") and f"/v1/{api}" in lines["route exists"]
    [request] = sim.stats.requests
    assert request.body is not None and request.body[field] == 16


def test_a_key_the_server_quotes_back_is_not_printed(start_sim: Callable[..., Simulator]) -> None:
    secret = "sk-check-" + "s3cr3t" * 6
    sim = start_sim(faults=["echo-auth=401"])
    code, lines, out = check("--base-url", sim.base_url, "--api-key-env", "MY_KEY", env={"MY_KEY": secret})
    assert code == 1
    assert lines["key accepted"].startswith("FAIL") and "[redacted]" in lines["key accepted"]
    assert secret not in out
