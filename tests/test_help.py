"""Help that teaches: panels, examples, the input's shapes, -h, --version, shell completion."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamdump.cli import app
from streamdump.helptext import Panel

ROOT = Path(__file__).resolve().parent.parent


def helped(*args: str, width: int = 100) -> str:
    result = CliRunner().invoke(app, list(args), terminal_width=width, env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_run_help_groups_its_options_in_panels() -> None:
    text = helped("run", "--help")
    titles = re.findall(r"╭─ (.+?) ─", text)
    panels = (Panel.INPUT, Panel.REQUEST, Panel.ENDPOINT, Panel.OUTPUT, Panel.LIMITS, Panel.RETRIES, Panel.SCALE_OUT)
    assert set(panels) <= set(titles)
    assert len(titles) == len(set(titles)), "a panel is drawn twice"
    endpoint = text.split(f"╭─ {Panel.ENDPOINT} ")[1].split("╰")[0]
    assert "--base-url" in endpoint and "--simulate" in endpoint and "--max-retries" not in endpoint


def test_run_help_opens_with_three_examples_and_the_input_shapes() -> None:
    text = helped("run", "--help")
    head = text.split("╭")[0]
    assert head.count("streamdump run prompts.jsonl") == 3
    assert "--simulate" in head and "--base-url http://localhost:8000/v1" in head
    assert '{"id": "a", "prompt": "..."}' in head and '"messages": [...]' in head and "README" in head


def test_bracketed_help_text_survives_rich_markup() -> None:
    text = " ".join(helped("run", "--help", width=200).split())
    assert "[default: gpt-4o-mini]" in text and "[default: OpenAI]" in text


def test_minus_h_is_help() -> None:
    assert helped("run", "-h") == helped("run", "--help")
    assert "run" in helped("-h")


def test_version_prints_the_packages_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert helped("--version").strip() == f"streamdump {version}"


def test_shell_completion_is_installable() -> None:
    text = helped("--help")
    assert "--install-completion" in text and "--show-completion" in text


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"]])
def test_help_imports_no_http_client(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "streamdump", *args], capture_output=True, text=True, check=True
    )
    imported = set(re.findall(r"\|\s+(openai|httpx2|httpx|tiktoken)(?:\.|\s*$)", done.stderr, re.MULTILINE))
    assert imported == set()
    assert "Usage" in done.stdout


@pytest.mark.parametrize("command", ["run", "check"])
def test_the_opening_prose_reads_whole_at_80_columns(command: str) -> None:
    head = helped(command, "--help", width=80).split("╭")[0]
    lines = [line.strip() for line in head.splitlines() if line.strip()]
    if command == "run":
        examples = [line for line in lines if line.startswith("streamdump run ")]
        assert examples == [
            "streamdump run prompts.jsonl --simulate           # rehearse, offline",
            "streamdump run prompts.jsonl -m gpt-4o-mini -c 32 # OpenAI: $OPENAI_API_KEY",
            "streamdump run prompts.jsonl --base-url http://localhost:8000/v1 -m MODEL",
        ]
        assert sum(line.startswith(("Input:", "or Batch API")) for line in lines) == 2
    else:
        assert lines[-1] == "Exit 0 when a run would work, 1 otherwise, 2 on bad usage."
