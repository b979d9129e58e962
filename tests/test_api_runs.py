"""The Responses API and text completions through the CLI: what a run of each records, and how it
handles what real servers and proxies do (a stream left open after its last event, zero usage
counts, chat parameters sent to the Responses API)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from streamdump.cli import app
from streamdump.simulator import Simulator

from support import Ran, expected_text, write_jsonl


def test_a_responses_attempt_ends_at_its_terminal_event(start_sim: Callable[..., Simulator], tmp_path: Path) -> None:
    """After response.completed the server has nothing more to say; an attempt that waited for it to
    close would sit until --idle-timeout (here ten minutes: the thread's join would give up)."""
    sim = start_sim(faults=["linger=600"])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "hello"}])
    out = tmp_path / "out"
    args = ["run", str(prompts), "-o", str(out), "-q", "--api", "responses", "--idle-timeout", "600"]
    box: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: box.setdefault("result", CliRunner().invoke(app, [*args, "--base-url", sim.base_url])),
        daemon=True,
    )
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "the attempt waited for the server to close after response.completed"
    assert box["result"].exit_code == 0, box["result"].stderr
    assert (out / "a.txt").read_text() == expected_text("hello")
    entry = json.loads((out / "manifest.jsonl").read_text())
    assert (entry["api"], entry["status"], entry["finish_reason"], entry["usage"]["source"]) == (
        "responses",
        "ok",
        "stop",
        "server",
    )


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"max_tokens": 50}, '"max_tokens" is a chat parameter; the Responses API takes "max_output_tokens"'),
        ({"response_format": {"type": "json_object"}}, '"response_format" is a chat parameter'),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
            "tools[0] has the chat shape",
        ),
    ],
)
def test_chat_parameters_sent_to_the_responses_api_are_input_errors(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, params: dict[str, Any], problem: str
) -> None:
    prompts = write_jsonl(
        tmp_path / "p.jsonl", [{"id": "ok", "prompt": "fine"}, {"id": "x", "prompt": "x", "params": params}]
    )
    ran = run_cli(prompts, "--api", "responses", sim=sim)
    assert ran.exit_code == 2
    assert f"{prompts}:2: {problem}" in ran.stderr
    assert sim.stats.requests == []
    assert not ran.out.exists()


@pytest.mark.parametrize("api", ["chat", "responses", "completions"])
def test_zero_usage_counts_for_an_answer_with_text_are_estimated(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path, api: str
) -> None:
    sim = start_sim(zero_usage=True)
    ran = run_cli(write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "hello"}]), "--api", api, sim=sim)
    assert ran.exit_code == 0, ran.stderr
    usage = ran.by_id()["a"]["usage"]
    assert usage["source"] == "estimate" and usage["completion_tokens"] > 0


@pytest.mark.parametrize(
    ("api", "body_type"),
    [("responses", "openai.types.responses.Response"), ("completions", "openai.types.Completion")],
)
def test_results_status_and_resume_hold_for_every_format(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, api: str, body_type: str
) -> None:
    import importlib

    module, _, name = body_type.rpartition(".")
    model = getattr(importlib.import_module(module), name)
    rows = [{"id": f"i{n}", "prompt": f"prompt {n}"} for n in range(3)]
    prompts = write_jsonl(tmp_path / "p.jsonl", rows)
    results = tmp_path / "results.jsonl"
    ran = run_cli(prompts, "--api", api, "--max-tokens", "40", "--results-jsonl", str(results), sim=sim)
    assert ran.exit_code == 0, ran.stderr
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(lines) == 3
    for line in lines:
        body = model.model_validate(line["response"]["body"])
        text = body.output_text if api == "responses" else body.choices[0].text
        assert text == (ran.out / f"{line['custom_id']}.txt").read_text()
    sent = len(sim.stats.requests)
    again = run_cli(prompts, "--api", api, "--max-tokens", "40", sim=sim)
    assert again.exit_code == 0 and len(sim.stats.requests) == sent  # resumed: nothing redone
    other = run_cli(prompts, "--api", "chat", "--max-tokens", "40", sim=sim)
    assert other.exit_code == 0 and len(sim.stats.requests) == sent + 3  # another format, another request
    status = CliRunner().invoke(app, ["status", str(ran.out), "--prompts", str(prompts)])
    assert status.exit_code == 0, status.stdout
    dry = CliRunner().invoke(app, ["run", str(prompts), "--api", api, "--dry-run", "--max-tokens", "40"])
    assert dry.exit_code == 0
    assert re.search(r"^total\s+3\s+[1-9]\d*\s+120$", dry.stdout, re.M), dry.stdout  # input/prompt counted
