"""The README and the CLI agree: every option is documented, and CI runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from streamdump.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def long_options(command: str) -> set[str]:
    result = CliRunner().invoke(app, [command, "--help"], terminal_width=200, env={"COLUMNS": "200"})
    assert result.exit_code == 0
    return set(re.findall(r"(--[a-z][a-z0-9-]+)", result.stdout)) - {"--help"}


def test_every_run_option_is_in_the_readme() -> None:
    options = long_options("run")
    assert "--concurrency" in options
    missing = sorted(option for option in options if f"`{option}" not in README and f"{option} " not in README)
    assert missing == []


def test_every_simulate_option_is_in_the_readme() -> None:
    missing = sorted(option for option in long_options("simulate") if option not in README)
    assert missing == []


def test_ci_runs_the_readmes_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert f"```sh\n{ci}\n```" in README


def test_every_check_option_is_in_the_readme() -> None:
    missing = sorted(option for option in long_options("check") if option not in README)
    assert missing == []


def test_real_use_starts_with_check() -> None:
    real_use = README.split("## Real use", 1)[1]
    assert real_use.index("streamdump check") < real_use.index("streamdump run")


def test_every_batch_option_is_in_the_readme() -> None:
    missing = []
    for command in ("submit", "status", "collect", "cancel"):
        result = CliRunner().invoke(app, ["batch", command, "--help"], terminal_width=200)
        assert result.exit_code == 0
        options = set(re.findall(r"(--[a-z][a-z0-9-]+)", result.stdout)) - {"--help"}
        missing += [f"{command} {option}" for option in sorted(options) if option not in README]
    assert missing == []
