"""The simulator's Batch API, through the real AsyncOpenAI client over real HTTP, its objects checked
against openai's own types."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import openai
import pytest
from openai.types import Batch, Completion, FileObject
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from streamdump.simulator import Simulator
from streamdump.simulator.batch_faults import parse_batch_fault
from streamdump.simulator.replies import REFUSAL

from support import expected_choice, expected_reasoning, expected_text

CHAT = "/v1/chat/completions"


def _line(custom_id: str, prompt: str, url: str = CHAT, **params: Any) -> dict[str, Any]:
    if url == CHAT:
        body: dict[str, Any] = {"model": "sim-1", "messages": [{"role": "user", "content": prompt}], **params}
    elif url == "/v1/responses":
        body = {"model": "sim-1", "input": prompt, **params}
    else:
        body = {"model": "sim-1", "prompt": prompt, **params}
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def _client(sim: Simulator) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key="sk-test", base_url=sim.base_url, max_retries=0)


async def _submit(
    client: openai.AsyncOpenAI, lines: list[dict[str, Any]], url: str = CHAT, **extra: Any
) -> tuple[FileObject, Batch]:
    upload = await client.files.create(file=("input.jsonl", _jsonl(lines)), purpose="batch")
    batch = await client.batches.create(
        input_file_id=upload.id,
        endpoint=url,  # type: ignore[arg-type]
        completion_window="24h",
        **extra,
    )
    return upload, batch


async def _results(client: openai.AsyncOpenAI, file_id: str | None) -> dict[str, dict[str, Any]]:
    if file_id is None:
        return {}
    content = await client.files.content(file_id)
    return {line["custom_id"]: line for line in map(json.loads, content.text.splitlines())}


def test_a_batch_answers_each_line_as_the_streams_would(start_sim: Callable[..., Simulator]) -> None:
    sim = start_sim(reasoning=3)
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    lines = [_line("a", "first prompt"), _line("b", "two choices", n=2), _line("c", "use a tool", tools=tools)]

    async def go() -> tuple[FileObject, Batch, Batch, dict[str, dict[str, Any]]]:
        async with _client(sim) as client:
            upload, created = await _submit(client, lines, metadata={"job": "j1"})
            done = await client.batches.retrieve(created.id)
            return upload, created, done, await _results(client, done.output_file_id)

    upload, created, done, results = asyncio.run(go())
    assert (upload.purpose, upload.filename, upload.bytes) == ("batch", "input.jsonl", len(_jsonl(lines)))
    assert created.status == "validating" and created.metadata == {"job": "j1"}
    assert done.status == "completed" and done.error_file_id is None
    assert done.request_counts is not None and (done.request_counts.completed, done.request_counts.total) == (3, 3)
    a = ChatCompletion.model_validate(results["a"]["response"]["body"])
    assert a.choices[0].message.content == expected_text("first prompt")
    assert a.choices[0].message.model_extra == {"reasoning_content": expected_reasoning("first prompt", 3)}
    b = ChatCompletion.model_validate(results["b"]["response"]["body"])
    assert [c.message.content for c in b.choices] == [expected_choice("two choices", i) for i in (0, 1)]
    c = ChatCompletion.model_validate(results["c"]["response"]["body"])
    assert c.choices[0].finish_reason == "tool_calls"
    calls = c.choices[0].message.tool_calls
    assert calls is not None and calls[0].function.name == "lookup"  # type: ignore[union-attr]
    assert all(line["response"]["request_id"] and line["error"] is None for line in results.values())


@pytest.mark.parametrize("url", ["/v1/responses", "/v1/completions"])
def test_responses_and_completions_lines_get_their_own_bodies(start_sim: Callable[..., Simulator], url: str) -> None:
    sim = start_sim()

    async def go() -> dict[str, dict[str, Any]]:
        async with _client(sim) as client:
            _, created = await _submit(client, [_line("x", "hello there", url)], url)
            done = await client.batches.retrieve(created.id)
            return await _results(client, done.output_file_id)

    body = asyncio.run(go())["x"]["response"]["body"]
    if url == "/v1/responses":
        assert Response.model_validate(body).output_text == expected_text("hello there")
    else:
        assert Completion.model_validate(body).choices[0].text == expected_text("hello there")


def test_line_faults_fail_or_change_single_lines(start_sim: Callable[..., Simulator]) -> None:
    sim = start_sim(faults=["status=400,match=bad", "refuse,match=weapon"])
    lines = [_line("ok", "fine"), _line("bad", "a bad one"), _line("no", "a weapon")]

    async def go() -> tuple[Batch, dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        async with _client(sim) as client:
            _, created = await _submit(client, lines)
            done = await client.batches.retrieve(created.id)
            return done, await _results(client, done.output_file_id), await _results(client, done.error_file_id)

    done, outputs, errors = asyncio.run(go())
    assert done.request_counts is not None and (done.request_counts.completed, done.request_counts.failed) == (2, 1)
    assert set(outputs) == {"ok", "no"} and set(errors) == {"bad"}
    assert errors["bad"]["response"]["status_code"] == 400
    assert errors["bad"]["response"]["body"]["error"]["message"] == "simulated 400"
    refusal = ChatCompletion.model_validate(outputs["no"]["response"]["body"]).choices[0].message
    assert (refusal.content, refusal.refusal) == (None, REFUSAL)


def test_an_expired_batch_keeps_what_it_finished(start_sim: Callable[..., Simulator]) -> None:
    sim = start_sim(batch_faults=(parse_batch_fault("expire,after=1"),))
    lines = [_line("one", "p1"), _line("two", "p2"), _line("three", "p3")]

    async def go() -> tuple[Batch, dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        async with _client(sim) as client:
            _, created = await _submit(client, lines)
            done = await client.batches.retrieve(created.id)
            return done, await _results(client, done.output_file_id), await _results(client, done.error_file_id)

    done, outputs, errors = asyncio.run(go())
    assert done.status == "expired" and done.expired_at is not None
    assert set(outputs) == {"one"}
    assert {key: line["error"]["code"] for key, line in errors.items()} == {
        "two": "batch_expired",
        "three": "batch_expired",
    }


@pytest.mark.parametrize(("rule", "code"), [("token-limit", "token_limit_exceeded"), ("fail", "invalid_request")])
def test_batch_faults_fail_whole_batches(start_sim: Callable[..., Simulator], rule: str, code: str) -> None:
    sim = start_sim(batch_faults=(parse_batch_fault(f"{rule},times=1"),))

    async def go() -> tuple[Batch, Batch]:
        async with _client(sim) as client:
            _, first = await _submit(client, [_line("a", "x")])
            _, second = await _submit(client, [_line("a", "x")])
            return await client.batches.retrieve(first.id), await client.batches.retrieve(second.id)

    first, second = asyncio.run(go())
    assert first.status == "failed" and first.errors is not None and first.errors.data is not None
    assert first.errors.data[0].code == code and first.output_file_id is None
    assert second.status == "completed"  # times=1


def test_validation_refuses_a_file_that_mixes_models_or_endpoints(sim: Simulator) -> None:
    mixed = [_line("a", "x"), {**_line("b", "y"), "body": {"model": "other", "messages": []}}]
    wrong_url = [_line("a", "x", "/v1/completions")]

    async def go() -> tuple[Batch, Batch]:
        async with _client(sim) as client:
            _, one = await _submit(client, mixed)
            _, two = await _submit(client, wrong_url)
            return await client.batches.retrieve(one.id), await client.batches.retrieve(two.id)

    one, two = asyncio.run(go())
    assert one.status == two.status == "failed"
    assert [e.code for e in (one.errors.data or [])] == ["mismatched_model"]  # type: ignore[union-attr]
    assert [(e.code, e.line) for e in (two.errors.data or [])] == [("mismatched_endpoint", 1)]  # type: ignore[union-attr]


def test_processing_time_then_cancel_and_list(start_sim: Callable[..., Simulator]) -> None:
    sim = start_sim(batch_seconds=3600)

    async def go() -> tuple[Batch, Batch, Batch, list[Batch], list[FileObject]]:
        async with _client(sim) as client:
            _, first = await _submit(client, [_line("a", "x")], metadata={"n": "1"})
            _, second = await _submit(client, [_line("b", "y")], metadata={"n": "2"})
            running = await client.batches.retrieve(first.id)
            cancelling = await client.batches.cancel(first.id)
            cancelled = await client.batches.retrieve(first.id)
            listed = [batch async for batch in client.batches.list(limit=1)]  # pages of one
            files = [f async for f in client.files.list(purpose="batch")]
            assert second.id == listed[0].id
            return running, cancelling, cancelled, listed, files

    running, cancelling, cancelled, listed, files = asyncio.run(go())
    assert running.status == "in_progress" and running.in_progress_at is not None
    assert cancelling.status == "cancelling" and cancelled.status == "cancelled"
    assert cancelled.output_file_id is None  # nothing was finished
    assert [b.metadata for b in listed] == [{"n": "2"}, {"n": "1"}]  # newest first, with metadata
    assert [f.filename for f in files] == ["input.jsonl", "input.jsonl"]
    sim.batch_api.processing_seconds = 0  # settable while the server runs

    async def finish() -> Batch:
        async with _client(sim) as client:
            return await client.batches.retrieve(listed[0].id)

    assert asyncio.run(finish()).status == "completed"


def test_drop_faults_store_first_then_hang_up(start_sim: Callable[..., Simulator]) -> None:
    sim = start_sim(batch_faults=(parse_batch_fault("upload-drop,times=1"), parse_batch_fault("create-drop,times=1")))

    async def go() -> tuple[list[str], list[Batch]]:
        failures = []
        async with _client(sim) as client:
            try:
                await client.files.create(file=("in.jsonl", _jsonl([_line("a", "x")])), purpose="batch")
            except openai.APIConnectionError:
                failures.append("upload")
            files = [f async for f in client.files.list()]
            try:
                await client.batches.create(input_file_id=files[0].id, endpoint=CHAT, completion_window="24h")
            except openai.APIConnectionError:
                failures.append("create")
            return failures, [b async for b in client.batches.list()]

    failures, batches = asyncio.run(go())
    assert failures == ["upload", "create"]
    uploads = [f for f in sim.batch_api.files.values() if f.purpose == "batch"]
    assert len(uploads) == 1 and len(batches) == 1  # both happened, unanswered


def test_unknown_ids_and_bad_uploads_are_4xx(sim: Simulator) -> None:
    async def go() -> list[int]:
        codes = []
        async with _client(sim) as client:
            for call in (
                client.files.retrieve("file-nope"),
                client.batches.retrieve("batch_nope"),
                client.files.create(file=("x.jsonl", b"{}"), purpose="fine-tune"),
                client.batches.create(input_file_id="file-nope", endpoint=CHAT, completion_window="24h"),
            ):
                try:
                    await call
                except openai.APIStatusError as exc:
                    codes.append(exc.status_code)
        return codes

    assert asyncio.run(go()) == [404, 404, 400, 400]


@pytest.mark.parametrize("spec", ["explode", "expire,after=x", "fail,when=now"])
def test_batch_fault_rules_are_checked(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_batch_fault(spec)
