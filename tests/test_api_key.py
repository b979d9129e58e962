"""The API key is never written anywhere: a key unfit to send is refused unseen, and a server that
echoes it gets it redacted from every record and every line printed."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest

from streamdump.apikey import REDACTED, redact, redacting
from streamdump.simulator import Simulator

from support import Ran, write_jsonl

SECRET = "sk-test-0123456789abcdef"


def _everything_written(ran: Ran, *extra: Path) -> str:
    files = [path for path in ran.out.rglob("*") if path.is_file()] + list(extra)
    return "".join(path.read_text(errors="replace") for path in files) + ran.stderr + ran.stdout


@pytest.mark.parametrize(
    ("key", "what"),
    [
        (SECRET + "\r", "a line break"),
        (SECRET + "\n", "a line break"),
        (SECRET + " ", "a space"),
        ("sk-t\u00e9st-0123456789abcdef", "a non-ASCII character"),
        ("sk-test\x1b-0123456789", "a control character"),
    ],
)
def test_a_key_unfit_to_send_is_refused_without_showing_it(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, key: str, what: str
) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "a"}])
    ran = run_cli(prompts, "--api-key-env", "MY_KEY", sim=sim, env={"MY_KEY": key})
    assert ran.exit_code == 2
    assert what in ran.stderr and "MY_KEY" in ran.stderr
    assert key.strip() not in ran.stderr
    assert sim.stats.requests == []
    assert not ran.out.exists()


def test_api_key_env_that_is_no_variable_name_is_refused_unechoed(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "a"}])
    ran = run_cli(prompts, "--api-key-env", SECRET, sim=sim)
    assert ran.exit_code == 2
    assert "--api-key-env" in ran.stderr
    assert SECRET not in ran.stderr + ran.stdout
    assert sim.stats.requests == []
    assert not ran.out.exists()


def test_a_server_echoing_the_key_gets_it_redacted_everywhere(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    # A 401 also stops the run, so the summary's "stopped" carries the server's message too.
    sim = start_sim(faults=["echo-auth=401"])
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "a"}])
    results = tmp_path / "results.jsonl"
    ran = run_cli(prompts, "--api-key-env", "MY_KEY", "--results-jsonl", str(results), sim=sim, env={"MY_KEY": SECRET})
    assert ran.exit_code == 1
    entry = ran.by_id()["a"]
    assert entry["status"] == "failed"
    assert entry["error"]["message"] == f"HTTP 401: invalid request header: authorization: Bearer {REDACTED}"
    assert REDACTED in (ran.out / "a.error.json").read_text()
    assert REDACTED in results.read_text() and REDACTED in ran.summary()["this_run"]["stopped"]
    assert REDACTED in ran.stderr
    assert SECRET not in _everything_written(ran, results)


def test_a_short_key_is_no_secret_and_is_not_redacted() -> None:
    with redacting("EMPTY"):
        assert redact("key EMPTY was refused") == "key EMPTY was refused"


def test_redact_takes_the_key_and_the_word_around_it_in_any_form() -> None:
    key = 'sk-a"b\\c/d+e'
    body = {
        "error": {"message": f"bad key Bearer:{key}!", "list": [f"x {key} y"]},
        json.dumps(key): "escaped key as a dict key",
        "url": "https://h/?k=" + urllib.parse.quote(key, safe=""),
    }
    text = json.dumps(body)
    with redacting(key):
        assert redact(body)["error"] == {"message": f"bad key {REDACTED}", "list": [f"x {REDACTED} y"]}
        assert redact(body)["url"] == REDACTED
        assert key not in json.dumps(redact(body)) and key not in redact(text)
        assert json.dumps(key)[1:-1] not in redact(text)
    assert redact(body) == body  # outside a run, nothing is redacted
