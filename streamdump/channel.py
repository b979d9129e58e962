"""Messages between the run's process and its worker processes (``--processes``): length-prefixed
pickles over a pair of pipes, read and written by the event loop without ever blocking it.

A message is a tuple whose first element names it (see ``processes`` for the vocabulary).  Both
ends are our own processes, started by us with the pipes as their only channel.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import struct
from collections.abc import Callable
from typing import Any

_HEAD = struct.Struct(">I")

Message = tuple[Any, ...]


def encode(message: Message) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEAD.pack(len(data)) + data


class Decoder:
    """Bytes in, whole messages out (a message may arrive in pieces, or several in one read)."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        messages: list[Message] = []
        while len(self._buffer) >= _HEAD.size:
            (size,) = _HEAD.unpack_from(self._buffer)
            end = _HEAD.size + size
            if len(self._buffer) < end:
                break
            messages.append(pickle.loads(self._buffer[_HEAD.size : end]))
            del self._buffer[:end]
        return messages


def read_message(fd: int) -> Message:
    """One message read with blocking reads (before the event loop runs). Raises EOFError."""
    head = _read_exactly(fd, _HEAD.size)
    (size,) = _HEAD.unpack(head)
    message: Message = pickle.loads(_read_exactly(fd, size))
    return message


def _read_exactly(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        more = os.read(fd, size - len(data))
        if not more:
            raise EOFError("the pipe closed")
        data += more
    return data


class _Reader(asyncio.Protocol):
    def __init__(self, on_message: Callable[[Message], None], on_close: Callable[[], None]) -> None:
        self._decoder = Decoder()
        self._on_message, self._on_close = on_message, on_close

    def data_received(self, data: bytes) -> None:
        for message in self._decoder.feed(data):
            self._on_message(message)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_close()


class Channel:
    """One end: ``send`` queues a message (never blocks); ``on_message`` sees each one received;
    ``on_close`` is called once when the other end has gone (its pipe closed)."""

    def __init__(self) -> None:
        self._writer: asyncio.WriteTransport | None = None
        self._reader: asyncio.ReadTransport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(
        cls, *, read_fd: int, write_fd: int, on_message: Callable[[Message], None], on_close: Callable[[], None]
    ) -> Channel:
        loop = asyncio.get_running_loop()
        channel = cls()

        def closed() -> None:
            if not channel.closed.done():
                channel.closed.set_result(None)
            on_close()

        channel._reader, _ = await loop.connect_read_pipe(
            lambda: _Reader(on_message, closed), os.fdopen(read_fd, "rb", buffering=0)
        )
        channel._writer, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(write_fd, "wb", buffering=0))
        return channel

    def send(self, *message: Any) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(encode(message))

    def close(self) -> None:
        for transport in (self._writer, self._reader):
            if transport is not None:
                transport.close()
