"""Hostile JSON in the prompts file is an input error (FILE:LINE, exit 2), never a traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from streamdump.jsonline import MAX_DEPTH
from streamdump.simulator import Simulator

from support import Ran


def _nested(levels: int) -> str:
    """A line whose "params" nest lists ``levels`` deep below the line's own object."""
    return '{"prompt": "x", "params": {"metadata": ' + "[" * (levels - 2) + "1" + "]" * (levels - 2) + "}}"


HOSTILE = [
    ("[" * 100_000 + "]" * 100_000, f"nested more than {MAX_DEPTH} levels deep"),
    (_nested(MAX_DEPTH + 1), f"nested more than {MAX_DEPTH} levels deep"),
    ('{"prompt": "x", "params": {"temperature": NaN}}', "NaN is not JSON"),
    ('{"prompt": "x", "params": {"temperature": -Infinity}}', "-Infinity is not JSON"),
    ('{"prompt": "x", "params": {"temperature": 1e400}}', "1e400 is out of range"),
    ('{"prompt": "x", "params": {"seed": ' + "9" * 5000 + "}}", "an integer has more than 4300 digits"),
    ('{"prompt": "\\ud800 alone"}', "lone surrogate"),
    ('{"id": "x\\uDC00", "prompt": "x"}', "lone surrogate"),
    ('{"messages": [{"role": ["user"], "content": "x"}]}', "messages[0].role must be one of"),
    ('{"custom_id": "x", "url": ["/v1/chat/completions"], "body": {}}', 'unknown Batch API "url"'),
]


@pytest.mark.parametrize(("line", "message"), HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_json_is_a_line_error_and_nothing_is_sent(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, line: str, message: str
) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"id": "fine", "prompt": "fine"}) + "\n" + line + "\n")
    ran = run_cli(prompts, sim=sim)
    assert ran.exit_code == 2
    assert f"{prompts}:2: " in ran.stderr and message in ran.stderr
    assert "Traceback" not in ran.stderr
    assert sim.stats.requests == []
    assert not ran.out.exists()


def test_a_pair_of_surrogate_escapes_and_deep_enough_nesting_are_fine(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(
        '{"id": "smile", "prompt": "\\ud83d\\ude00"}\n' + _nested(MAX_DEPTH).replace("{", '{"id": "deep", ', 1) + "\n"
    )
    ran = run_cli(prompts, sim=sim)
    assert ran.exit_code == 0, ran.stderr
    assert {r.prompt for r in sim.stats.requests} == {"\U0001f600", "x"}
