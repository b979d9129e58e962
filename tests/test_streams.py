"""What real endpoints stream besides content, end to end: reasoning, refusals, tool calls,
several choices, and the answer file's extension."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamdump.cli import app
from streamdump.simulator import Simulator
from streamdump.simulator.replies import REFUSAL, tool_arguments

from support import Ran, expected_choice, expected_reasoning, expected_text, leftover_parts, write_jsonl

# Every test here runs on both HTTP transports (--http aiohttp and httpx).
pytestmark = pytest.mark.usefixtures("each_transport")

FAST_RETRY = ("--backoff-base", "0.01", "--backoff-max", "0.02", "--max-retries", "2")
TOOLS = [
    {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "save", "parameters": {"type": "object"}}},
]


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_is_kept_apart_from_the_answer(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path, field: str
) -> None:
    sim = start_sim(reasoning=9, reasoning_field=field)
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "r", "prompt": "think first"}])
    ran = run_cli(prompts, sim=sim)
    assert ran.exit_code == 0, ran.stderr
    assert (ran.out / "r.txt").read_text() == expected_text("think first")
    reasoning = (ran.out / "r.reasoning.txt").read_text()
    assert reasoning == expected_reasoning("think first", 9)
    entry = ran.by_id()["r"]
    answer = expected_text("think first")
    assert (entry["status"], entry["reasoning_chars"], entry["chars"]) == ("ok", len(reasoning), len(answer))
    assert entry["usage"]["completion_tokens"] == 9 + 12  # reasoning tokens are completion tokens
    assert leftover_parts(ran.out) == []


def test_no_reasoning_drops_the_text_but_counts_it(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(reasoning=5)
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "r", "prompt": "quiet"}])
    ran = run_cli(prompts, "--no-reasoning", sim=sim)
    assert ran.exit_code == 0, ran.stderr
    files = sorted(p.name for p in ran.out.iterdir() if p.name != ".streamdump-locks")
    assert files == ["manifest.jsonl", "r.txt", "summary.json"]
    assert ran.by_id()["r"]["reasoning_chars"] == len(expected_reasoning("quiet", 5))
    assert ran.summary()["options"]["no_reasoning"] is True


def test_steady_reasoning_longer_than_the_idle_timeout_is_not_a_stall(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    # 60 pieces of reasoning at 50 a second: over a second of thinking, a piece every 20 ms;
    # the idle timeout (0.5 s) is far shorter than the thinking and far longer than any gap.
    sim = start_sim(reasoning=60, tokens_per_second=50, length=2)
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "slow", "prompt": "ponder"}])
    ran = run_cli(prompts, "--idle-timeout", "0.5", "--max-retries", "0", sim=sim)
    assert ran.exit_code == 0, ran.stderr
    assert len(sim.stats.requests) == 1
    assert ran.by_id()["slow"]["duration_s"] > 0.5  # the thinking outlasted the idle timeout
    assert (ran.out / "slow.reasoning.txt").read_text() == expected_reasoning("ponder", 60)


def test_a_stream_dropped_while_reasoning_keeps_the_partial_reasoning(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(reasoning=10, faults=["drop,after=4"])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "d", "prompt": "dropped"}])
    ran = run_cli(prompts, *FAST_RETRY, sim=sim)
    assert ran.exit_code == 1
    assert leftover_parts(ran.out) == ["d.reasoning.txt.part"]  # the empty answer part is gone
    partial = (ran.out / "d.reasoning.txt.part").read_text()
    assert partial == expected_reasoning("dropped", 10)[: len(partial)] and partial.count(" ") == 4
    assert not (ran.out / "d.reasoning.txt").exists() and not (ran.out / "d.txt").exists()
    record = json.loads((ran.out / "d.error.json").read_text())
    assert (record["partial_file"], record["partial_files"]) == (None, ["d.reasoning.txt.part"])
    assert [a["chars"] for a in record["attempts"]] == [len(partial)] * 3
    assert ran.by_id()["d"]["reasoning_chars"] == len(partial)


def test_a_refusal_is_not_an_answer(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(faults=["refuse,match=forbidden"])
    rows = [{"id": "no", "prompt": "something forbidden"}, {"id": "yes", "prompt": "something fine"}]
    prompts = write_jsonl(tmp_path / "p.jsonl", rows)
    ran = run_cli(prompts, sim=sim)
    assert ran.exit_code == 1  # a completed request that produced no answer: a cron job notices
    assert (ran.out / "no.refusal.txt").read_text() == REFUSAL
    assert not (ran.out / "no.txt").exists()
    assert leftover_parts(ran.out) == []
    entry = ran.by_id()["no"]
    assert (entry["status"], entry["finish_reason"], entry["refusal_chars"]) == ("refused", "stop", len(REFUSAL))
    assert entry["usage"]["source"] == "server" and entry["attempts"] == 1
    assert ran.summary()["statuses"] == {"ok": 1, "refused": 1}
    assert "2 items: 1 ok, 1 refused" in ran.stderr
    assert "no: refused" in ran.stderr
    # A refused item is not done: the next run asks again (and only for it).
    before = len(sim.stats.requests)
    again = run_cli(prompts, sim=sim)
    assert again.exit_code == 1
    assert [r.prompt for r in sim.stats.requests[before:]] == ["something forbidden"]


def test_a_refusal_removes_an_earlier_answer_and_an_answer_removes_an_earlier_refusal(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(faults=["refuse,match=v2"])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "x", "prompt": "v1"}])
    assert run_cli(prompts, sim=sim).exit_code == 0
    write_jsonl(prompts, [{"id": "x", "prompt": "v2"}])
    refused = run_cli(prompts, sim=sim)
    assert refused.exit_code == 1
    assert sorted(p.name for p in refused.out.glob("x.*")) == ["x.refusal.txt"]
    write_jsonl(prompts, [{"id": "x", "prompt": "v3"}])
    answered = run_cli(prompts, sim=sim)
    assert answered.exit_code == 0
    assert sorted(p.name for p in answered.out.glob("x.*")) == ["x.txt"]


def test_tool_calls_are_assembled_and_written_as_json(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "t", "prompt": "call tools 🙂", "params": {"tools": TOOLS}}])
    ran = run_cli(prompts, sim=sim)
    assert ran.exit_code == 0, ran.stderr
    assert sim.stats.requests[0].body["tools"] == TOOLS  # type: ignore[index]
    calls = json.loads((ran.out / "t.tool_calls.json").read_text())
    assert [c["function"]["name"] for c in calls] == ["lookup", "save"]
    for call, name in zip(calls, ["lookup", "save"], strict=True):
        assert call["type"] == "function" and call["id"].startswith("call_")
        assert call["function"]["arguments"] == tool_arguments("call tools 🙂", name, 0)
        assert json.loads(call["function"]["arguments"])["query"] == "call tools 🙂"
    assert (ran.out / "t.txt").read_text() == ""  # the answer had no text; it is still complete
    entry = ran.by_id()["t"]
    assert (entry["status"], entry["finish_reason"], entry["tool_calls"]) == ("ok", "tool_calls", 2)
    assert ran.summary()["finish_reasons"] == {"tool_calls": 1}
    assert "1 finished by tool_calls" in ran.stderr
    assert leftover_parts(ran.out) == []


def test_tool_calls_of_an_incomplete_stream_are_not_written(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(faults=["truncate,after=5"])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "t", "prompt": "x", "params": {"tools": TOOLS}}])
    ran = run_cli(prompts, "--max-retries", "0", sim=sim)
    assert ran.exit_code == 1
    assert not (ran.out / "t.tool_calls.json").exists()
    assert ran.by_id()["t"]["error"]["type"] == "incomplete"


def test_several_choices_each_stream_into_their_own_file(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(reasoning=3)
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "c", "prompt": "three ways", "params": {"n": 3}}])
    ran = run_cli(prompts, "--ext", "md", sim=sim)
    assert ran.exit_code == 0, ran.stderr
    assert sim.stats.requests[0].body["n"] == 3  # type: ignore[index]
    for k in range(3):
        assert (ran.out / f"c.{k + 1}.md").read_text() == expected_choice("three ways", k)
        assert (ran.out / f"c.{k + 1}.reasoning.txt").read_text() == expected_reasoning("three ways", 3, k)
    assert not (ran.out / "c.md").exists()
    assert leftover_parts(ran.out) == []
    entry = ran.by_id()["c"]
    assert entry["file"] == "c.1.md"
    assert [(c["index"], c["file"], c["finish_reason"]) for c in entry["choices"]] == [
        (0, "c.1.md", "stop"),
        (1, "c.2.md", "stop"),
        (2, "c.3.md", "stop"),
    ]
    assert entry["chars"] == sum(c["chars"] for c in entry["choices"])
    assert entry["reasoning_chars"] == sum(c["reasoning_chars"] for c in entry["choices"]) > 0
    # Usage is the request's, counted once: prompt tokens once, every choice's completion tokens.
    assert entry["usage"] == {
        "prompt_tokens": 2,
        "completion_tokens": 3 * (12 + 3),
        "reasoning_tokens": 3 * 3,  # completion_tokens_details.reasoning_tokens, recorded as it came
        "source": "server",
    }
    summary = ran.summary()
    assert summary["tokens"] == {"prompt": 2, "completion": 45}
    assert summary["finish_reasons"] == {"stop": 3}


def test_several_choices_resume_needs_every_answer_file(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "c", "prompt": "two", "params": {"n": 2}}])
    assert run_cli(prompts, sim=sim).exit_code == 0
    again = run_cli(prompts, sim=sim)
    assert (again.exit_code, len(sim.stats.requests)) == (0, 1)
    (again.out / "c.2.txt").unlink()
    redo = run_cli(prompts, sim=sim)
    assert (redo.exit_code, len(sim.stats.requests)) == (0, 2)
    assert (redo.out / "c.2.txt").read_text() == expected_choice("two", 1)


def test_a_server_that_ignores_n_fails_the_item_without_retrying(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(faults=["single-choice"])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "c", "prompt": "many", "params": {"n": 3}}])
    ran = run_cli(prompts, *FAST_RETRY, sim=sim)
    assert ran.exit_code == 1
    assert len(sim.stats.requests) == 1
    entry = ran.by_id()["c"]
    assert entry["error"]["type"] == "missing_choices"
    assert "does the server support n?" in entry["error"]["message"]
    assert leftover_parts(ran.out) == ["c.1.txt.part"]  # the one choice that came is kept
    assert not (ran.out / "c.1.txt").exists()


def test_several_choices_retry_with_fresh_part_files(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(faults=["drop,after=7,times=1"])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "c", "prompt": "again", "params": {"n": 2}}])
    ran = run_cli(prompts, *FAST_RETRY, sim=sim)
    assert ran.exit_code == 0, ran.stderr
    assert ran.by_id()["c"]["attempts"] == 2
    for k in range(2):
        assert (ran.out / f"c.{k + 1}.txt").read_text() == expected_choice("again", k)
    assert leftover_parts(ran.out) == []


@pytest.mark.parametrize("n", [0, -1, 1.5, "2", True])
def test_bad_n_is_an_input_error(sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, n: object) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "c", "prompt": "x", "params": {"n": n}}])
    ran = run_cli(prompts, sim=sim)
    assert ran.exit_code == 2
    assert f'{prompts}:1: "n" must be a positive integer' in ran.stderr
    assert sim.stats.requests == [] and not ran.out.exists()


def test_ext_sets_the_answer_extension_and_resume_follows_it(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "m", "prompt": "markdown"}, {"id": "summary", "prompt": "s"}])
    ran = run_cli(prompts, "--ext", "json", sim=sim)
    assert ran.exit_code == 0, ran.stderr
    assert (ran.out / "m.json").read_text() == expected_text("markdown")
    assert ran.by_id()["m"]["file"] == "m.json"
    # An id named like the run's own files cannot overwrite them.
    assert ran.summary()["items"] == 2
    assert "~" in ran.by_id()["summary"]["file"]
    assert run_cli(prompts, "--ext", "json", sim=sim).exit_code == 0
    assert len(sim.stats.requests) == 2
    assert run_cli(prompts, "--ext", "md", sim=sim).exit_code == 0  # no .md answers yet: redone
    assert len(sim.stats.requests) == 4


@pytest.mark.parametrize("ext", ["tar.gz", "../x", "part", ""])
def test_bad_ext_is_a_usage_error(sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, ext: str) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "m", "prompt": "x"}])
    ran = run_cli(prompts, "--ext", ext, sim=sim)
    assert ran.exit_code == 2
    assert "--ext" in ran.stderr
    assert sim.stats.requests == [] and not ran.out.exists()


def test_files_of_an_earlier_run_that_this_run_did_not_write_are_removed(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(reasoning=4)
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "a", "params": {"tools": TOOLS}}])
    first = run_cli(prompts, sim=sim)
    assert first.exit_code == 0
    assert {p.name for p in first.out.glob("a.*")} == {"a.txt", "a.reasoning.txt", "a.tool_calls.json"}
    write_jsonl(prompts, [{"id": "a", "prompt": "a"}])
    second = run_cli(prompts, "--no-reasoning", sim=sim)
    assert second.exit_code == 0
    assert {p.name for p in second.out.glob("a.*")} == {"a.txt"}


def test_reasoning_split_across_network_writes_is_intact(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(reasoning=40, faults=["split-utf8"])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "u", "prompt": "unicode please"}])
    ran = run_cli(prompts, sim=sim)
    assert ran.exit_code == 0, ran.stderr
    reasoning = (ran.out / "u.reasoning.txt").read_text(encoding="utf-8")
    assert reasoning == expected_reasoning("unicode please", 40)
    assert any(ord(ch) > 127 for ch in reasoning), "the test prompt must produce multi-byte characters"


def test_simulate_refuses_an_unknown_reasoning_field() -> None:
    result = CliRunner().invoke(app, ["simulate", "--port", "0", "--reasoning-field", "thoughts"])
    assert result.exit_code == 2
    assert "--reasoning-field must be one of reasoning_content, reasoning" in result.stderr


def test_choices_a_proxy_left_unfinished_fail_at_once_not_retried(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    """LiteLLM's proxy forwards every choice's text but only choice 0's finish_reason, then [DONE]:
    the server ended the stream on purpose, so asking again cannot help."""
    sim = start_sim(faults=["lost-finish"])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "c", "prompt": "two ways", "params": {"n": 2}}])
    ran = run_cli(prompts, sim=sim)
    assert ran.exit_code == 1
    entry = ran.by_id()["c"]
    assert (entry["status"], entry["attempts"], entry["error"]["type"]) == ("failed", 1, "missing_choices")
    assert "choice 2 never finished" in entry["error"]["message"]
    assert len(sim.stats.requests) == 1
