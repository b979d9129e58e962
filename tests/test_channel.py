"""The framing of the messages between a run and its worker processes (``--processes``)."""

from __future__ import annotations

import os

import pytest

from streamdump.channel import Decoder, encode, read_message


def test_messages_come_out_whole_however_the_bytes_are_cut() -> None:
    messages = [("job", {"id": "a", "text": "é" * 1000}), ("pause", 2.5), ("end",)]
    data = b"".join(encode(m) for m in messages)
    for size in (1, 3, 7, 4096, len(data)):
        decoder = Decoder()
        got = []
        for start in range(0, len(data), size):
            got += decoder.feed(data[start : start + size])
        assert got == messages, size


def test_a_blocking_read_gets_one_message_and_sees_the_pipe_close() -> None:
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, encode(("config", {"concurrency": 4})) + encode(("next",)))
        assert read_message(read_fd) == ("config", {"concurrency": 4})
        assert read_message(read_fd) == ("next",)
        os.close(write_fd)
        with pytest.raises(EOFError):
            read_message(read_fd)
    finally:
        os.close(read_fd)
