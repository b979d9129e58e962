"""The pure parts of batch: splitting within the API's limits, the journal's reading, result bodies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streamdump.batch.bodies import parse_body
from streamdump.batch.journal import JOURNAL, ItemRecord, Journal, read_journal
from streamdump.batch.split import MAX_BYTES, MAX_REQUESTS, Limits, LineTooLargeError, Splitter

CHAT, RESP = ("/v1/chat/completions", "m"), ("/v1/responses", "m")


@pytest.mark.parametrize(
    ("limits", "lines", "fresh"),
    [
        # one group: a new file every `requests` lines
        (Limits(requests=2), [(CHAT, 1)] * 5, [True, False, True, False, True]),
        # bytes: a line that would pass the limit starts a new file; one that fills it exactly does not
        (Limits(bytes=10), [(CHAT, 4), (CHAT, 6), (CHAT, 1), (CHAT, 9), (CHAT, 1)], [True, False, True, False, True]),
        # groups (endpoint, model) never share a file, and each keeps its own count
        (Limits(requests=2), [(CHAT, 1), (RESP, 1), (CHAT, 1), (RESP, 1), (CHAT, 1)], [True, True, False, False, True]),
        ((Limits()), [(CHAT, 1), (("/v1/chat/completions", "other"), 1)], [True, True]),
    ],
)
def test_splitting_places_each_request(limits: Limits, lines: list[Any], fresh: list[bool]) -> None:
    splitter = Splitter(limits)
    assert [splitter.place(group, size) for group, size in lines] == fresh


def test_the_limits_are_the_apis() -> None:
    assert (MAX_REQUESTS, MAX_BYTES) == (50_000, 200_000_000)
    with pytest.raises(ValueError):
        Limits(requests=MAX_REQUESTS + 1)
    with pytest.raises(LineTooLargeError):
        Splitter(Limits(bytes=10)).place(CHAT, 11)
    splitter = Splitter()
    assert sum(splitter.place(CHAT, 100) for _ in range(MAX_REQUESTS + 1)) == 2


def _file(journal: Journal, key: str, *ids: str) -> None:
    items = [ItemRecord(i, n, i, "txt", 1, f"h{n}").to_json(key) for n, i in enumerate(ids, start=1)]
    written = {"event": "file_written", "key": key, "name": f"streamdump-{key}-d.jsonl", "digest": "d" * 64}
    written |= {"endpoint": "/v1/chat/completions", "model": "m", "requests": len(ids), "bytes": 10}
    journal.append(*items, written)


def test_the_journal_reads_back_each_files_steps(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    _file(journal, "k1", "a", "b")
    journal.append({"event": "upload_started", "key": "k1"}, {"event": "uploaded", "key": "k1", "file_id": "f1"})
    journal.append({"event": "batch_creating", "key": "k1", "at": 5.0})
    _file(journal, "k2", "c")
    journal.append(
        {"event": "item", "key": "k3", "id": "d", "line": 9, "name": "d", "ext": "txt", "n": 1, "request_hash": "x"}
    )
    with open(tmp_path / JOURNAL, "ab") as handle:
        handle.write(b'{"event": "batch_created", "key": "k1", "bat')  # a torn last line (kill -9)
    state = read_journal(tmp_path)
    assert list(state.files) == ["k1", "k2"]  # k3 was never written whole: its items are not in a batch
    k1 = state.files["k1"]
    assert (k1.upload_started, k1.file_id, k1.creating_since, k1.batch_id) == (True, "f1", 5.0, None)
    assert k1.items["b"] == ItemRecord("b", 2, "b", "txt", 1, "h2")
    assert state.pending_ids() == {"a", "b", "c"}
    journal.append(
        {"event": "batch_created", "key": "k1", "batch_id": "b1"},
        {"event": "collected", "key": "k1", "status": "completed"},
    )
    lines = (tmp_path / JOURNAL).read_text().splitlines()
    assert json.loads(lines[-1])["event"] == "collected"  # the torn line was ended, not glued onto
    assert read_journal(tmp_path).pending_ids() == {"c"}


def test_a_response_body_reads_as_the_stream_would_write_it() -> None:
    body = {
        "id": "resp_1",
        "object": "response",
        "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"},
        "model": "m",
        "output": [
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "think"}]},
            {
                "type": "message",
                "content": [{"type": "output_text", "text": "Hel"}, {"type": "output_text", "text": "lo"}],
            },
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}", "id": "fc_1"},
        ],
        "usage": {"input_tokens": 3, "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 1}},
    }
    parsed = parse_body("responses", body)
    (one,) = parsed.choices
    assert (one.content, one.reasoning, one.finish_reason) == ("Hello", "think", "length")
    assert one.tool_calls == [{"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}]
    assert parsed.usage == {"prompt_tokens": 3, "completion_tokens": 5, "reasoning_tokens": 1, "source": "server"}
    calls_only = {**body, "status": "completed", "output": body["output"][2:]}
    assert parse_body("responses", calls_only).choices[0].finish_reason == "tool_calls"


def test_chat_and_completion_bodies_read_each_choice() -> None:
    chat = {
        "id": "chatcmpl-1",
        "model": "m",
        "choices": [
            {"index": 1, "message": {"content": None, "refusal": "no"}, "finish_reason": "stop"},
            {"index": 0, "message": {"content": "yes", "reasoning": "hm"}, "finish_reason": "stop"},
        ],
    }
    parsed = parse_body("chat", chat)
    assert [(c.index, c.content, c.reasoning, c.refusal) for c in parsed.choices] == [
        (0, "yes", "hm", ""),
        (1, "", "", "no"),
    ]
    assert parsed.usage["source"] is None  # no usage reported: said so, not invented
    text = parse_body(
        "completions",
        {
            "choices": [{"index": 0, "text": "t", "finish_reason": "length"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1},
        },
    )
    assert (text.choices[0].content, text.usage["source"]) == ("t", "server")
    with pytest.raises(ValueError):
        parse_body("chat", {"choices": []})
