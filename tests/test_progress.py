"""Progress: retries counted, not printed; timed plain lines; cancelled is not failed; 80 columns."""

from __future__ import annotations

import fcntl
import io
import os
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamdump.cli import app
from streamdump.progress import Progress
from streamdump.simulator import Simulator

from support import AMBIENT, wait_for, write_jsonl

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d streamdump: ")


def plain(verbose: bool = False, quiet: bool = False) -> tuple[Progress, io.StringIO]:
    out = io.StringIO()
    return Progress(4, stream=out, interval=0, verbose=verbose, quiet=quiet), out


def test_plain_lines_start_with_an_iso_time() -> None:
    progress, out = plain()
    progress.item("ok", 5)
    progress.error("streamdump: a: failed after 6 attempt(s): HTTP 500")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    for line in lines:
        assert ISO.match(line), line
        datetime.fromisoformat(line.split(" ", 1)[0])  # a time Python reads back


def test_a_retry_is_counted_not_printed_unless_verbose() -> None:
    progress, out = plain()
    progress.retry("streamdump: a: attempt 1 failed (HTTP 503); retrying in 0.1 s")
    assert out.getvalue() == ""
    progress.item("ok", 0)
    assert "1 retries" in out.getvalue()
    loud, said = plain(verbose=True)
    loud.retry("streamdump: a: attempt 1 failed (HTTP 503); retrying in 0.1 s")
    assert "retrying in 0.1 s" in said.getvalue()


def test_quiet_wins_over_verbose() -> None:
    progress, out = plain(verbose=True, quiet=True)
    progress.retry("streamdump: a: attempt 1 failed; retrying")
    progress.item("ok", 0)
    assert out.getvalue() == ""


def test_cancelled_items_are_counted_as_cancelled_not_failed() -> None:
    progress, out = plain()
    for status in ("ok", "failed", "cancelled", "cancelled"):
        progress.item(status, 0)
    assert (progress.failed, progress.cancelled) == (1, 2)
    assert out.getvalue().splitlines()[-1].split("streamdump: ")[1].startswith("4/4 done, 1 not ok, 2 cancelled")
    assert progress.counts().startswith("failed=1 cancelled=2")


@pytest.fixture
def terminal() -> Iterator[tuple[io.TextIOWrapper, int]]:
    """A real pseudo-terminal, 80 columns wide: (the program's side as a text file, our side's fd)."""
    ours, theirs = os.openpty()
    fcntl.ioctl(theirs, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    stream = io.TextIOWrapper(io.FileIO(theirs, "w"), encoding="utf-8", write_through=True)
    yield stream, ours
    stream.close()
    os.close(ours)


def read_all(fd: int) -> str:
    chunks = []
    os.set_blocking(fd, False)
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def bar_frames(terminal: tuple[io.TextIOWrapper, int], total: int, retries: int) -> list[str]:
    stream, ours = terminal
    progress = Progress(total, stream=stream)
    for _ in range(retries):
        progress.retry("streamdump: x: attempt 1 failed (HTTP 503); retrying in 1.0 s")
    progress.item("failed", 0)
    progress.item("cancelled", 0)
    progress.error("streamdump: x: failed after 6 attempt(s): HTTP 503")
    progress._bar.refresh()  # type: ignore[union-attr]
    text = read_all(ours)
    progress.close()
    assert "retrying in" not in text
    assert text.count("failed after 6 attempt(s)") == 1
    return [frame.strip() for frame in re.split(r"[\r\n]|\x1b\[A", text) if f"/{total}" in frame]


@pytest.mark.parametrize(("total", "retries", "bar_at_least"), [(800, 219, 15), (100_000, 12_345, 3)])
def test_in_a_terminal_the_bar_counts_retries_and_keeps_its_counts_at_80_columns(
    terminal: tuple[io.TextIOWrapper, int], total: int, retries: int, bar_at_least: int
) -> None:
    frames = bar_frames(terminal, total, retries)
    assert frames
    last = frames[-1]
    assert f"failed=1 cancelled=1 retries={retries} 0 tok/s" in last
    assert all(len(frame) <= 80 for frame in frames), max(frames, key=len)
    assert len(last.split("|")[1]) >= bar_at_least, last


def run_on_a_terminal(
    sim: Simulator, prompts: Path, out: Path, *args: str, interrupt_when: Callable[[], bool] | None = None
) -> tuple[int, str]:
    """``streamdump run`` with its stderr on a real 80-column pseudo-terminal: (exit code, what it drew)."""
    ours, theirs = os.openpty()
    fcntl.ioctl(theirs, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in AMBIENT}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamdump", "run", str(prompts), "-o", str(out), "--base-url", sim.base_url, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=theirs,
        env=env,
    )
    os.close(theirs)
    chunks: list[bytes] = []
    reader = threading.Thread(target=_drain, args=(ours, chunks), daemon=True)
    reader.start()
    if interrupt_when is not None:
        wait_for(interrupt_when)
        proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=60)
    reader.join(timeout=10)
    os.close(ours)
    return code, b"".join(chunks).decode("utf-8", "replace")


def _drain(fd: int, chunks: list[bytes]) -> None:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other side is closed
            return
        if not chunk:
            return
        chunks.append(chunk)


def test_a_run_on_a_terminal_counts_retries_on_the_bar_and_prints_none(
    start_sim: Callable[..., Simulator], tmp_path: Path
) -> None:
    sim = start_sim(faults=["503,times=1"])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": f"p{n}", "prompt": f"p{n}"} for n in range(6)])
    code, drawn = run_on_a_terminal(sim, prompts, tmp_path / "out", "-c", "2", "--backoff-base", "0")
    assert code == 0, drawn
    assert "retrying" not in drawn
    assert "retries=6" in drawn and "6/6" in drawn


def test_after_ctrl_c_the_bar_says_cancelled_not_failed(start_sim: Callable[..., Simulator], tmp_path: Path) -> None:
    sim = start_sim(faults=["stall=30"])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": f"p{n}", "prompt": f"p{n}"} for n in range(4)])
    code, drawn = run_on_a_terminal(
        sim, prompts, tmp_path / "out", "-c", "2", interrupt_when=lambda: len(sim.stats.requests) >= 2
    )
    assert code == 130, drawn
    frames = [frame for frame in re.split(r"[\r\n]", drawn) if "/4 |" in frame]
    assert "cancelled=2" in frames[-1] and "failed=" not in frames[-1]


def test_verbose_prints_every_retry(start_sim: Callable[..., Simulator], tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": f"p{n}", "prompt": f"p{n}"} for n in range(3)])

    def run(*args: str) -> str:
        sim = start_sim(faults=["503,times=1"])
        argv = ["run", str(prompts), "-o", str(tmp_path / "out"), "--force", "--backoff-base", "0", *args]
        result = CliRunner().invoke(app, [*argv, "--base-url", sim.base_url])
        assert result.exit_code == 0, result.stderr
        return result.stderr

    assert "retrying" not in run()
    assert run("-v").count("retrying in") == 3
    assert run("--verbose", "-q").count("retrying in") == 0
