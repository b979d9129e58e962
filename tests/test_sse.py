"""SSE framing and chunk parsing (pure)."""

from __future__ import annotations

import pytest

from streamdump.errors import MalformedChunkError, OversizedEventError, StreamEventError
from streamdump.sse import EventDecoder, LineSplitter, StreamState
from streamdump.wire.chat import FORMAT as CHAT


@pytest.mark.parametrize(
    ("feeds", "lines"),
    [
        ([b"a\nb\n"], [b"a", b"b"]),
        ([b"a", b"b\n"], [b"ab"]),
        ([b"a\r\nb\r\n"], [b"a", b"b"]),
        ([b"a\r", b"\nb\n"], [b"a", b"b"]),
        ([b"a\rb\r\n"], [b"a", b"b"]),
        ([b"caf\xc3", b"\xa9\n"], [b"caf\xc3\xa9"]),
        ([b"a", b"b", b"c\rd\n"], [b"abc", b"d"]),
        ([b"a\r", b"b\n"], [b"a", b"b"]),
        ([b"a", b"\r", b"b", b"\n"], [b"a", b"b"]),
    ],
)
def test_line_splitter(feeds: list[bytes], lines: list[bytes]) -> None:
    splitter = LineSplitter()
    got = [line for feed in feeds for line in splitter.feed(feed)]
    assert got == lines


def test_a_line_past_the_limit_fails_and_is_held_without_copies() -> None:
    splitter = LineSplitter(limit=10)
    pieces = [b"1234", b"5678"]
    for piece in pieces:
        assert splitter.feed(piece) == []
    # Held as the pieces it came in, not re-joined at every read.
    assert all(held is piece for held, piece in zip(splitter._pieces, pieces, strict=True))
    with pytest.raises(OversizedEventError, match="line of more than"):
        splitter.feed(b"9ab")


def test_an_event_past_the_limit_fails() -> None:
    decoder = EventDecoder(limit=10)
    assert decoder.feed(b"data: 12345\n") == []
    with pytest.raises(OversizedEventError, match="event of more than"):
        decoder.feed(b"data: 67890\n")


def test_a_line_at_the_limit_is_fine() -> None:
    decoder = EventDecoder(limit=10)
    assert decoder.feed(b"data: 123") == []
    assert decoder.feed(b"4\n\n") == [(None, b"1234")]


def test_event_decoder_joins_data_lines_and_drops_comments() -> None:
    decoder = EventDecoder()
    events = decoder.feed(b': ping\n\ndata: {"a":\ndata: 1}\n\nevent: error\ndata: {}\n\n')
    assert events == [(None, b'{"a":\n1}'), ("error", b"{}")]
    assert decoder.comments == 1


def test_event_decoder_flushes_a_last_event_without_blank_line() -> None:
    decoder = EventDecoder()
    assert decoder.feed(b"data: [DONE]") == []
    assert decoder.flush() == [(None, b"[DONE]")]


def test_parse_event_text_finish_usage_done() -> None:
    state = StreamState()
    assert (
        CHAT.parse_event(b'{"model": "m", "choices": [{"delta": {"role": "assistant", "content": ""}}]}', state, None)
        is None
    )
    assert CHAT.parse_event(b'{"choices": [{"delta": {"content": "hi"}}]}', state, None) == "hi"
    assert CHAT.parse_event(b'{"choices": [{"delta": {}, "finish_reason": "length"}]}', state, None) is None
    assert (
        CHAT.parse_event(b'{"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}', state, None) is None
    )
    assert CHAT.parse_event(b"[DONE]", state, None) is None
    assert (state.model, state.finish_reason, state.done) == ("m", "length", True)
    assert state.usage == {"prompt_tokens": 3, "completion_tokens": 1}


def test_parse_event_errors() -> None:
    with pytest.raises(MalformedChunkError):
        CHAT.parse_event(b"{nope", StreamState(), None)
    with pytest.raises(StreamEventError, match="overloaded"):
        CHAT.parse_event(b'{"error": {"message": "overloaded"}}', StreamState(), None)
    with pytest.raises(StreamEventError):
        CHAT.parse_event(b'{"message": "x"}', StreamState(), "error")


@pytest.mark.parametrize(
    ("payload", "text"),
    [
        (b'{"choices": [{"delta": {"content": "\\ud83d"}}]}', "\ud83d"),  # half of a pair split across chunks
        (b'{"choices": [{"delta": {"content": "x"}}], "n": NaN}', "x"),
        (b'{"choices": [{"delta": {"content": "y"}}], "n": 123456789012345678901234567890}', "y"),
        (b'{"choices": [{"delta": {"content": "caf\\u00e9 \xc3\xa9"}}]}', "café é"),
    ],
)
def test_parse_event_takes_what_json_takes(payload: bytes, text: str) -> None:
    """orjson is the fast path; whatever it refuses and json accepts still parses the same."""
    assert CHAT.parse_event(payload, StreamState(), None) == text


@pytest.mark.parametrize("payload", [b'{"choices": [}', b"\xff\xfe", b'{"a": "\xc3"}'])
def test_parse_event_refuses_what_json_refuses(payload: bytes) -> None:
    with pytest.raises(MalformedChunkError):
        CHAT.parse_event(payload, StreamState(), None)
