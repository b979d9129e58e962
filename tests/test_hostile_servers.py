"""Servers that misbehave on purpose: the prompt goes nowhere else, and memory stays bounded."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from streamdump import _constants as C
from streamdump.simulator import Simulator

from support import Ran, write_jsonl


def test_a_redirect_is_not_followed_and_fails_the_item_unretried(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(faults=["redirect,match=moved,times=1"])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "moved", "prompt": "moved"}, {"id": "b", "prompt": "b"}])
    ran = run_cli(prompts, "--max-retries", "3", "--backoff-base", "0", sim=sim)
    assert ran.exit_code == 1
    moved = ran.by_id()["moved"]
    assert (moved["status"], moved["attempts"], moved["error"]["type"]) == ("failed", 1, "redirect")
    target = f"http://127.0.0.1:{sim.port}/elsewhere/v1/chat/completions"
    assert target in moved["error"]["message"]
    assert target in ran.stderr
    assert ran.by_id()["b"]["status"] == "ok"
    # The prompt was never re-sent where the redirect pointed.
    assert [r.path for r in sim.stats.requests if r.prompt == "moved"] == ["/v1/chat/completions"]


def test_a_line_that_never_ends_fails_the_attempt_with_a_clear_retried_error(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(faults=[f"long-line={C.MAX_EVENT_BYTES + (1 << 20)}"])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "a"}])
    ran = run_cli(prompts, "--max-retries", "1", "--backoff-base", "0", "--idle-timeout", "300", sim=sim)
    assert ran.exit_code == 1
    entry = ran.by_id()["a"]
    assert (entry["attempts"], entry["error"]["type"]) == (2, "oversized")
    assert "of more than 8 MiB" in entry["error"]["message"]
    record = json.loads((ran.out / "a.error.json").read_text())
    assert [a["error"]["type"] for a in record["attempts"]] == ["oversized", "oversized"]
