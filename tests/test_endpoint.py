"""A base URL that cannot work is refused before anything is sent, with the fix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from streamdump.endpoint import base_url_problem

from support import Ran, write_jsonl


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8000/v1",
        "https://api.openai.com/v1",
        "http://127.0.0.1:8000/v1/",
        "HTTP://Example.com/v1",
        "http://[::1]:8000/v1",
        "http://localhost:11434/v1",
        "https://api.example.com/openai/deployments/x",  # not every provider ends in /v1
        "http://localhost:8000",
        "https://user:secret@proxy.example/v1",
        "https://openrouter.ai/api/v1",
        "http://host/v1/chat",  # only whole routes count
        "http://host/v1/completions-proxy",
    ],
)
def test_a_usable_base_url_passes(url: str) -> None:
    assert base_url_problem(url) is None


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("127.0.0.1:8000/v1", "has no http:// or https:// scheme: try http://127.0.0.1:8000/v1"),
        ("localhost:8000/v1", "try http://localhost:8000/v1"),
        ("api.openai.com/v1", "try http://api.openai.com/v1"),
        ("/v1", "has no http:// or https:// scheme"),
        ("ftp://host/v1", "is not an http:// or https:// URL"),
        ("http:///v1", "is not an http:// or https:// URL with a host"),
        ("http://:8000/v1", "has no host"),
        ("http://host:port/v1", "has a bad port"),
        ("http://host/v1?api-version=1", "give the base URL alone, 'http://host/v1'"),
        ("http://host/v1#frag", "has a query or fragment"),
        ("http://host:8000/v1/chat/completions", "--base-url http://host:8000/v1"),
        ("http://host:8000/v1/chat/completions/", "--base-url http://host:8000/v1"),
        ("http://host/v1/completions", "ends in /completions"),
        ("http://host/v1/responses", "ends in /responses, which streamdump appends itself"),
        ("http://host/v1/models", "--base-url http://host/v1"),
        ("http://host/V1/Chat/Completions", "--base-url http://host/V1"),
        ("https://host/chat/completions", "--base-url https://host"),
    ],
)
def test_a_base_url_that_cannot_work_is_refused_with_the_fix(url: str, says: str) -> None:
    problem = base_url_problem(url)
    assert problem is not None and says in problem


@pytest.mark.parametrize(
    "url", ["https://user:sk-secret@host/v1/chat/completions", "http://host/v1?key=sk-secret", "user:sk-secret@host/v1"]
)
def test_the_refusal_never_shows_credentials(url: str) -> None:
    problem = base_url_problem(url)
    assert problem is not None and "sk-secret" not in problem


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("127.0.0.1:9/v1", "try http://127.0.0.1:9/v1"),
        ("http://127.0.0.1:9/v1/chat/completions", "--base-url http://127.0.0.1:9/v1"),
    ],
)
def test_run_refuses_a_bad_base_url_with_exit_2_and_writes_nothing(
    run_cli: Callable[..., Ran], tmp_path: Path, url: str, says: str
) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "hi"}])
    ran = run_cli(prompts, "--base-url", url)
    assert ran.exit_code == 2
    assert says in ran.stderr and "--base-url" in ran.stderr
    assert not ran.out.exists()


def test_run_refuses_a_bad_base_url_from_the_environment(run_cli: Callable[..., Ran], tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "hi"}])
    ran = run_cli(prompts, env={"OPENAI_BASE_URL": "localhost:8000/v1"})
    assert ran.exit_code == 2 and "OPENAI_BASE_URL" in ran.stderr and "try http://localhost:8000/v1" in ran.stderr
