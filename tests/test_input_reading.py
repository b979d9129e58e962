"""The run reads the prompts file off the event loop, in large blocks: a read that blocks (a slow
or network filesystem; here a FIFO nobody writes to) holds no stream and no signal still."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from streamdump.blocklines import read_lines
from streamdump.simulator import Simulator

from support import collect_stderr, wait_for


def _read_all(path: Path, **kwargs: int) -> list[bytes]:
    async def collect() -> list[bytes]:
        return [line async for line in read_lines(str(path), **kwargs)]

    return asyncio.run(collect())


@pytest.mark.parametrize(
    ("content", "kwargs", "lines"),
    [
        (b"a\nbb\n", {}, [b"a", b"bb"]),
        (b"a\nbb", {}, [b"a", b"bb"]),  # no newline at the end
        (b"a\n\nccccccccc\nd\n", {"block": 3}, [b"a", b"", b"ccccccccc", b"d"]),  # a line over several blocks
        (b"a\nbb\nccc\n", {"limit": 5, "block": 2}, [b"a", b"bb"]),  # stops at the bytes checked
        (b"", {}, []),
    ],
)
def test_read_lines_splits_blocks_into_lines(
    tmp_path: Path, content: bytes, kwargs: dict[str, int], lines: list[bytes]
) -> None:
    path = tmp_path / "p.jsonl"
    path.write_bytes(content)
    assert _read_all(path, **kwargs) == lines


def _open_writer(fifo: Path) -> int | None:
    """A write end of the FIFO, if a reader has it open (else None)."""
    try:
        return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            return None
        raise


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a FIFO")
def test_a_read_of_the_input_that_blocks_holds_no_signal(sim: Simulator, tmp_path: Path) -> None:
    fifo = tmp_path / "prompts.jsonl"
    os.mkfifo(fifo)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    argv = ["run", str(fifo), "-o", str(out), "--base-url", sim.base_url, "--progress-interval", "3600"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamdump", *argv],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    writers: list[int] = []

    def reader_waiting() -> bool:
        fd = _open_writer(fifo)
        if fd is not None:
            writers.append(fd)
        return fd is not None

    lines, reader = collect_stderr(proc)
    try:
        with open(fifo, "w") as handle:  # the check reads the input once, to its end
            handle.write(json.dumps({"id": "a", "prompt": "a"}) + "\n")
        wait_for(lambda: (out / "manifest.jsonl").exists())  # the check is over; the run has begun
        # The run opens the input again and reads it: the FIFO gives it nothing until we write.
        wait_for(reader_waiting)
        proc.send_signal(signal.SIGTERM)
        # The signal is handled while the read still waits: the loop was not the one waiting.
        wait_for(lambda: any("stopping: SIGTERM received" in line for line in lines))
    finally:
        for fd in writers:
            os.close(fd)  # the read ends, and with it the run
        proc.wait(timeout=30)
        reader.join(timeout=10)
        assert proc.stderr is not None
        proc.stderr.close()
    assert proc.returncode == 143, "".join(lines)
    assert json.loads((out / "summary.json").read_text())["this_run"]["stopped"] == "SIGTERM received"
