"""Input lines -> jobs: the three shapes, defaults, and every kind of bad line (pure)."""

from __future__ import annotations

import pytest

from streamdump.jobs import Defaults, LineError, parse_line, request_hash

D = Defaults(model="m-default")


def test_prompt_shape_with_system_model_and_params() -> None:
    job = parse_line('{"id": "p", "prompt": "hi", "system": "be brief", "model": "m2", "params": {"seed": 3}}', 1, D)
    assert job.id == "p"
    assert job.model == "m2"
    assert job.messages == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert job.params == {"seed": 3}
    assert job.body() == {"seed": 3, "model": "m2", "messages": job.messages}


def test_messages_shape_gets_default_system_only_when_it_has_none() -> None:
    defaults = Defaults(model="m", system="sys")
    plain = parse_line('{"id": "a", "messages": [{"role": "user", "content": "x"}]}', 1, defaults)
    assert plain.messages[0] == {"role": "system", "content": "sys"}
    own = parse_line(
        '{"id": "a", "messages": [{"role": "system", "content": "mine"}, {"role": "user", "content": "x"}]}',
        1,
        defaults,
    )
    assert own.messages[0]["content"] == "mine"


def test_batch_api_shape() -> None:
    line = (
        '{"custom_id": "b1", "method": "POST", "url": "/v1/chat/completions", '
        '"body": {"model": "gpt-x", "messages": [{"role": "user", "content": "q"}], "max_tokens": 5, "stream": false}}'
    )
    job = parse_line(line, 4, D)
    assert (job.id, job.model, job.params) == ("b1", "gpt-x", {"max_tokens": 5})


def test_missing_id_is_line_number_and_defaults_fill_in() -> None:
    job = parse_line('{"prompt": "x"}', 42, Defaults(model="m", params={"temperature": 0.5, "max_tokens": 9}))
    assert job.id == "line-000042"
    assert job.params == {"temperature": 0.5, "max_tokens": 9}
    override = parse_line(
        '{"prompt": "x", "params": {"temperature": 1.0}}', 1, Defaults(model="m", params={"temperature": 0.5})
    )
    assert override.params == {"temperature": 1.0}


def test_numeric_id_is_used_as_text() -> None:
    assert parse_line('{"id": 7, "prompt": "x"}', 1, D).id == "7"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('"text"', "expected a JSON object, got str"),
        ('{"id": "a"}', 'needs "prompt" or "messages"'),
        ('{"prompt": ""}', '"prompt" must be a non-empty string'),
        ('{"prompt": 5}', '"prompt" must be a non-empty string'),
        ('{"prompt": "x", "messages": []}', "not both"),
        ('{"messages": []}', "non-empty list"),
        ('{"messages": "hi"}', "non-empty list"),
        ('{"messages": ["hi"]}', "messages[0] must be an object"),
        ('{"messages": [{"role": "wizard", "content": "x"}]}', "messages[0].role must be one of"),
        ('{"messages": [{"role": "user"}]}', 'messages[0] has no "content"'),
        ('{"messages": [{"role": "user", "content": 5}]}', "content must be a string or a list"),
        ('{"id": "", "prompt": "x"}', '"id" is empty'),
        ('{"id": ["a"], "prompt": "x"}', '"id" must be a string'),
        ('{"id": true, "prompt": "x"}', '"id" must be a string'),
        ('{"prompt": "x", "params": [1]}', '"params" must be an object'),
        ('{"prompt": "x", "params": {"stream": false}}', "may not set stream"),
        ('{"prompt": "x", "model": ""}', '"model" must be a non-empty string'),
        ('{"prompt": "x", "system": 3}', '"system" must be a string'),
        ('{"custom_id": "a", "method": "POST", "url": "/v1/embeddings", "body": {}}', 'unknown Batch API "url"'),
        ('{"custom_id": "a", "method": "GET", "url": "/v1/chat/completions", "body": {}}', "must be POST"),
        ('{"custom_id": "a", "url": "/v1/chat/completions", "body": []}', '"body" must be an object'),
        ('{"custom_id": "a", "url": "/v1/chat/completions", "body": {"messages": []}}', "non-empty list"),
    ],
)
def test_bad_lines_say_what_is_wrong(line: str, message: str) -> None:
    with pytest.raises(LineError) as info:
        parse_line(line, 1, D)
    assert message in str(info.value)


def test_request_hash_covers_model_messages_params_and_ignores_key_order() -> None:
    messages = [{"role": "user", "content": "x"}]
    base = request_hash("m", messages, {"a": 1, "b": 2})
    assert base == request_hash("m", messages, {"b": 2, "a": 1})
    assert base != request_hash("m2", messages, {"a": 1, "b": 2})
    assert base != request_hash("m", [{"role": "user", "content": "y"}], {"a": 1, "b": 2})
    assert base != request_hash("m", messages, {"a": 1, "b": 3})
