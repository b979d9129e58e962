"""Every failure mode end to end: the simulator fails one way, the CLI must react the right way."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import streamdump.sse as sse
from streamdump.output import cut_torn_tail
from streamdump.simulator import Simulator
from streamdump.wire.chat import Chat

from support import Ran, expected_text, write_jsonl

# Every test here runs on both HTTP transports (--http aiohttp and httpx).
pytestmark = pytest.mark.usefixtures("each_transport")

FAST_RETRY = ("--backoff-base", "0.01", "--backoff-max", "0.02", "--max-retries", "3")


def attempts_for(sim: Simulator, prompt: str) -> int:
    return sum(1 for r in sim.stats.requests if r.prompt == prompt)


@pytest.mark.parametrize(
    "fault",
    [
        "status=500",
        "status=503",
        "status=408",
        "status=409",
        "429",
        "drop,after=3",
        "sse-error,after=2",
        "malformed,after=2",
        "truncate,after=4",
        "eof,after=4",
    ],
)
def test_retried_faults_recover_and_count_attempts(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path, fault: str
) -> None:
    sim = start_sim(faults=[f"{fault},times=2,match=flaky"])
    prompts = write_jsonl(
        tmp_path / "p.jsonl", [{"id": "flaky", "prompt": "flaky one"}, {"id": "fine", "prompt": "fine one"}]
    )
    ran = run_cli(prompts, *FAST_RETRY, sim=sim)
    assert ran.exit_code == 0, ran.stderr
    assert attempts_for(sim, "flaky one") == 3
    assert attempts_for(sim, "fine one") == 1
    entry = ran.by_id()["flaky"]
    assert (entry["status"], entry["attempts"]) == ("ok", 3)
    # Each attempt started a fresh part file: no text of a failed attempt is in the answer.
    assert (ran.out / "flaky.txt").read_text() == expected_text("flaky one")
    assert not (ran.out / "flaky.error.json").exists()
    assert not (ran.out / "flaky.txt.part").exists()


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_never_retried(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path, status: int
) -> None:
    sim = start_sim(faults=[f"status={status},match=bad"])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "bad", "prompt": "bad one"}])
    ran = run_cli(prompts, *FAST_RETRY, sim=sim)
    assert ran.exit_code == 1
    assert attempts_for(sim, "bad one") == 1
    entry = ran.by_id()["bad"]
    assert entry["status"] == "failed"
    assert entry["error"]["status"] == status
    record = json.loads((ran.out / "bad.error.json").read_text())
    assert record["error"]["status"] == status
    assert len(record["attempts"]) == 1
    assert record["partial_file"] is None


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_stop_the_whole_run(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path, status: int
) -> None:
    sim = start_sim(faults=[f"status={status}"])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": f"i{n}", "prompt": f"p{n}"} for n in range(30)])
    ran = run_cli(prompts, "-c", "2", sim=sim)
    assert ran.exit_code == 1
    assert len(sim.stats.requests) <= 3  # the ones already in flight, not all 30
    assert "check the API key" in ran.stderr
    summary = ran.summary()
    assert summary["not_started"] >= 27
    assert summary["this_run"]["stopped"]


def test_last_failure_keeps_partial_text_and_an_error_record(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(faults=["drop,after=5,match=doomed"])
    prompts = write_jsonl(
        tmp_path / "p.jsonl", [{"id": "doomed", "prompt": "doomed one"}, {"id": "ok", "prompt": "fine"}]
    )
    ran = run_cli(prompts, *FAST_RETRY, sim=sim)
    assert ran.exit_code == 1
    assert attempts_for(sim, "doomed one") == 4
    partial = (ran.out / "doomed.txt.part").read_text()
    assert partial == expected_text("doomed one")[: len(partial)]
    assert partial.count(" ") == 5  # five pieces arrived before the drop
    assert not (ran.out / "doomed.txt").exists()
    record = json.loads((ran.out / "doomed.error.json").read_text())
    assert record["id"] == "doomed"
    assert record["partial_file"] == "doomed.txt.part"
    assert record["error"]["type"] == "connection"
    assert [a["attempt"] for a in record["attempts"]] == [1, 2, 3, 4]
    assert all(a["chars"] == len(partial) and a["error"]["type"] == "connection" for a in record["attempts"])
    assert all("started_at" in a for a in record["attempts"])
    entry = ran.by_id()["doomed"]
    assert entry["status"] == "failed" and entry["error"]["type"] == "connection"
    assert (ran.out / "ok.txt").read_text() == expected_text("fine")
    assert "doomed: failed after 4 attempt(s)" in ran.stderr


def test_stall_is_detected_while_keepalive_pings_flow(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(faults=["stall=30,ping=0.05,after=2,times=1"])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "s", "prompt": "stally"}])
    started = time.monotonic()
    ran = run_cli(prompts, *FAST_RETRY, "--idle-timeout", "0.4", sim=sim)
    assert ran.exit_code == 0, ran.stderr
    assert time.monotonic() - started < 10
    assert attempts_for(sim, "stally") == 2
    assert (ran.out / "s.txt").read_text() == expected_text("stally")


def test_stall_on_last_attempt_is_recorded(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(faults=["stall=30,after=0"])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "s", "prompt": "stuck"}])
    ran = run_cli(prompts, "--max-retries", "1", "--backoff-base", "0.01", "--idle-timeout", "0.3", sim=sim)
    assert ran.exit_code == 1
    record = json.loads((ran.out / "s.error.json").read_text())
    assert record["error"]["type"] == "stall"
    assert record["partial_file"] is None  # the last attempt received no text
    assert not (ran.out / "s.txt.part").exists()


def test_attempt_timeout_bounds_a_slow_stream(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(tokens_per_second=20, length=100)
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "t", "prompt": "long"}])
    ran = run_cli(prompts, "--max-retries", "0", "--timeout", "0.5", sim=sim)
    assert ran.exit_code == 1
    assert ran.by_id()["t"]["error"]["type"] == "timeout"
    assert 0 < len((ran.out / "t.txt.part").read_text()) < len(expected_text("long", 100))


def test_retry_after_is_honoured_and_pauses_the_whole_run(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(faults=["429,retry_after=0.6,times=1,match=limited"], tokens_per_second=100, length=4)
    rows = [{"id": "limited", "prompt": "limited"}] + [{"id": f"o{n}", "prompt": f"other {n}"} for n in range(6)]
    prompts = write_jsonl(tmp_path / "p.jsonl", rows)
    ran = run_cli(prompts, "-c", "1", "--backoff-base", "5", sim=sim)
    assert ran.exit_code == 0, ran.stderr
    requests = sim.stats.requests
    assert requests[0].prompt == "limited" and requests[0].fault == "status"
    # With one worker the retry comes next; it waited Retry-After (not the 5 s backoff base).
    assert requests[1].prompt == "limited"
    gap = requests[1].at - requests[0].at
    assert 0.55 <= gap < 3


def test_429_pause_holds_other_workers_too(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    """While the run is paused no worker starts a request.  Counted, not timed: during the pause at
    most the other three workers' requests already past the gate may arrive (each worker has one
    at a time, and a stream takes 0.5 s); without the pause, dozens would."""
    sim = start_sim(faults=["429,retry_after=1.5,times=1,match=limited"], tokens_per_second=20, length=10)
    rows = [{"id": "limited", "prompt": "limited"}] + [{"id": f"o{n}", "prompt": f"other {n}"} for n in range(20)]
    prompts = write_jsonl(tmp_path / "p.jsonl", rows)
    ran = run_cli(prompts, "-c", "4", sim=sim)
    assert ran.exit_code == 0, ran.stderr
    limited_at = next(r.at for r in sim.stats.requests if r.fault == "status")
    during_pause = [r for r in sim.stats.requests if limited_at < r.at < limited_at + 1.5]
    assert len(during_pause) <= 3
    assert attempts_for(sim, "limited") == 2


def test_retry_after_ms_and_http_date(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(faults=["503,retry_after_ms=300,times=1,match=ms", "503,retry_after_date=2,times=1,match=date"])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "ms", "prompt": "ms"}, {"id": "date", "prompt": "date"}])
    ran = run_cli(prompts, "-c", "2", "--backoff-base", "30", sim=sim)
    assert ran.exit_code == 0, ran.stderr
    by_prompt: dict[str, list[float]] = {}
    for request in sim.stats.requests:
        by_prompt.setdefault(request.prompt, []).append(request.at)
    assert 0.25 <= by_prompt["ms"][1] - by_prompt["ms"][0] < 2
    assert 0.5 <= by_prompt["date"][1] - by_prompt["date"][0] < 4  # HTTP dates have 1 s resolution


def test_max_retry_after_caps_the_servers_wait(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(faults=["429,retry_after=3600,times=1"])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "x", "prompt": "x"}])
    started = time.monotonic()
    ran = run_cli(prompts, "--max-retry-after", "0.2", sim=sim)
    assert ran.exit_code == 0, ran.stderr
    assert time.monotonic() - started < 10
    assert attempts_for(sim, "x") == 2


@pytest.mark.parametrize(("fault", "reason"), [("content-filter,after=3", "content_filter"), (None, "length")])
def test_length_and_content_filter_are_complete_answers(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path, fault: str | None, reason: str
) -> None:
    sim = start_sim(faults=[fault] if fault else [])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "x", "prompt": "x", "params": {"max_tokens": 5}}])
    ran = run_cli(prompts, sim=sim)
    assert ran.exit_code == 0, ran.stderr
    entry = ran.by_id()["x"]
    assert (entry["status"], entry["finish_reason"]) == ("ok", reason)
    assert (ran.out / "x.txt").exists()
    assert ran.summary()["finish_reasons"] == {reason: 1}
    assert f"1 finished by {reason}" in ran.stderr


def test_max_failures_stops_the_run(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(faults=["status=400"])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": f"i{n}", "prompt": f"p{n}"} for n in range(20)])
    ran = run_cli(prompts, "-c", "1", "--max-failures", "3", sim=sim)
    assert ran.exit_code == 1
    assert len(sim.stats.requests) == 3
    assert ran.summary()["statuses"] == {"failed": 3}
    assert ran.summary()["not_started"] == 17


def test_no_connection_left_open_after_retries(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(faults=["stall=30,after=1,times=3,match=p0", "sse-error,after=1,times=2,match=p1"])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "p0", "prompt": "p0"}, {"id": "p1", "prompt": "p1"}])
    ran = run_cli(prompts, "-c", "1", "--idle-timeout", "0.2", *FAST_RETRY, sim=sim)
    assert ran.exit_code == 0, ran.stderr
    assert len(sim.stats.requests) == 7
    # Each abandoned attempt's connection was closed before the next opened.
    assert sim.stats.peak_connections == 1
    deadline = time.monotonic() + 2
    while sim.stats.open_connections and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sim.stats.open_connections == 0


# streamdump with a file size limit: a write past FSIZE bytes fails as on a disk that filled
# (EFBIG; Python ignores SIGXFSZ).
WITH_FILE_SIZE_LIMIT = """
import resource, sys
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv.pop(1)),) * 2)
from streamdump.cli import main
sys.argv[0] = "streamdump"
main()
"""


def test_disk_full_stops_with_a_clear_error_and_keeps_finished_files(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim()
    out = tmp_path / "out"
    first = write_jsonl(tmp_path / "first.jsonl", [{"id": "a", "prompt": "a"}])
    assert run_cli(first, sim=sim, out=out).exit_code == 0
    before = (out / "a.txt").read_bytes()
    both = write_jsonl(tmp_path / "both.jsonl", [{"id": "a", "prompt": "a"}, {"id": "b", "prompt": "b"}])
    argv = ["run", str(both), "-o", str(out), "-q", "--base-url", sim.base_url]
    # No file may grow past 40 bytes: the next item's part file hits the limit.
    ran = subprocess.run([sys.executable, "-c", WITH_FILE_SIZE_LIMIT, "40", *argv], capture_output=True, text=True)
    assert ran.returncode == 1, ran.stderr
    assert "File too large" in ran.stderr and "b.txt.part" in ran.stderr
    assert "Traceback" not in ran.stderr
    assert (out / "a.txt").read_bytes() == before
    assert not (out / "b.txt").exists()


def test_resume_redoes_failed_changed_and_missing_items_only(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(faults=["status=400,times=1,match=flaky"])
    rows = [
        {"id": "same", "prompt": "same"},
        {"id": "flaky", "prompt": "flaky"},
        {"id": "changed", "prompt": "v1"},
        {"id": "gone", "prompt": "gone"},
    ]
    prompts = write_jsonl(tmp_path / "p.jsonl", rows)
    first = run_cli(prompts, sim=sim)
    assert first.exit_code == 1  # flaky failed with a 400
    (first.out / "gone.txt").unlink()
    rows[2]["prompt"] = "v2"
    write_jsonl(prompts, rows)
    before = len(sim.stats.requests)
    second = run_cli(prompts, sim=sim)
    assert second.exit_code == 0, second.stderr
    assert sorted(r.prompt for r in sim.stats.requests[before:]) == ["flaky", "gone", "v2"]
    assert (second.out / "changed.txt").read_text() == expected_text("v2")
    assert not (second.out / "flaky.error.json").exists()  # the stale error record is gone
    before = len(sim.stats.requests)
    forced = run_cli(prompts, "--force", sim=sim)
    assert forced.exit_code == 0
    assert len(sim.stats.requests) - before == 4


def test_an_unexpected_error_fails_one_item_not_the_run(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug (here: a KeyError injected into chunk parsing for one model) fails that item only."""
    real = Chat.parse_event

    def buggy(self: Chat, data: bytes, state: sse.StreamState, event: str | None = None) -> str | None:
        if b"buggy-model" in data:  # the simulator echoes each request's model in its chunks
            raise KeyError("a bug")
        return real(self, data, state, event)

    monkeypatch.setattr(Chat, "parse_event", buggy)
    rows = [{"id": "a", "prompt": "a", "model": "buggy-model"}, {"id": "b", "prompt": "b"}]
    ran = run_cli(write_jsonl(tmp_path / "p.jsonl", rows), sim=sim)
    assert ran.exit_code == 1
    a, b = ran.by_id()["a"], ran.by_id()["b"]
    assert (a["status"], a["attempts"], a["error"]["type"]) == ("failed", 1, "unexpected")
    assert "a bug" in a["error"]["message"]
    assert b["status"] == "ok"
    assert (ran.out / "b.txt").read_text() == expected_text("b")


def test_a_torn_manifest_tail_is_cut_before_the_next_run_appends(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert run_cli(write_jsonl(tmp_path / "a.jsonl", [{"id": "a", "prompt": "a"}]), sim=sim, out=out).exit_code == 0
    with open(out / "manifest.jsonl", "a") as handle:
        handle.write('{"id": "b", "status": "ok", "usage": {"prompt_')  # the disk filled mid-append
    both = write_jsonl(tmp_path / "both.jsonl", [{"id": "a", "prompt": "a"}, {"id": "b", "prompt": "b"}])
    ran = run_cli(both, sim=sim, out=out)
    assert ran.exit_code == 0, ran.stderr
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a", "b"]  # every line valid, the torn one gone


@pytest.mark.parametrize(
    ("content", "kept"),
    [
        (b"", b""),
        (b"{}\n", b"{}\n"),
        (b'{}\n{}\n{"torn', b"{}\n{}\n"),
        (b'{"torn and long' * 10, b""),
        (b"{}\n" + b"x" * 25, b"{}\n"),
    ],
)
def test_cut_torn_tail_keeps_every_whole_line(tmp_path: Path, content: bytes, kept: bytes) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(content)
    fd = os.open(path, os.O_RDWR)
    try:
        cut_torn_tail(fd, block=4)  # a tail longer than several blocks
    finally:
        os.close(fd)
    assert path.read_bytes() == kept


def test_a_server_that_finishes_then_hangs_still_gives_a_complete_answer(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(faults=["linger=30"])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "h", "prompt": "hang after"}])
    ran = run_cli(prompts, "--idle-timeout", "0.3", "--max-retries", "0", sim=sim)
    assert ran.exit_code == 0, ran.stderr
    assert (ran.out / "h.txt").read_text() == expected_text("hang after")
    assert ran.by_id()["h"]["usage"]["source"] == "estimate"  # the usage chunk never came


def test_a_429_on_an_items_last_attempt_still_pauses_the_run(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(faults=["429,retry_after=0.8,match=limited"])
    rows = [{"id": "limited", "prompt": "limited"}, {"id": "next", "prompt": "next"}]
    ran = run_cli(write_jsonl(tmp_path / "p.jsonl", rows), "-c", "1", "--max-retries", "0", sim=sim)
    assert ran.exit_code == 1
    first, second = sim.stats.requests
    assert (first.prompt, second.prompt) == ("limited", "next")
    assert second.at - first.at >= 0.75


@contextlib.contextmanager
def hang_up_server() -> Iterator[str]:
    """A server on 127.0.0.1 that accepts each connection and closes it before any answer."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/v1"
    finally:
        done.set()
        thread.join()
        server.close()


@contextlib.contextmanager
def refusing_address() -> Iterator[str]:
    """An address on 127.0.0.1 where nothing listens: a bound socket that never listens refuses."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


@pytest.mark.parametrize("server", [refusing_address, hang_up_server])
def test_a_failed_connection_is_a_connection_error_not_a_timeout(
    run_cli: Callable[..., Ran], tmp_path: Path, server: Callable[[], contextlib.AbstractContextManager[str]]
) -> None:
    # openai's aiohttp transport labels these "connect timeout"; the kind comes from the cause.
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "x", "prompt": "anyone there"}])
    with server() as base_url:
        ran = run_cli(prompts, *FAST_RETRY, "--base-url", base_url)
    assert ran.exit_code == 1
    entry = ran.by_id()["x"]
    assert entry["status"] == "failed" and entry["attempts"] >= 3  # first contact may stop it at 3
    assert entry["error"]["type"] == "connection", entry["error"]
    record = json.loads((ran.out / "x.error.json").read_text())
    assert [a["error"]["type"] for a in record["attempts"]] == ["connection"] * entry["attempts"]
