"""Templates over records through the CLI: rendered prompts sent, bad records refused up front."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from streamdump.jobs import request_hash
from streamdump.simulator import Simulator

from support import Ran, expected_text, write_jsonl

RECORDS = [
    {"id": "dune", "title": "Dune", "author": {"name": "Herbert"}, "url": "https://example.org/dune"},
    {"id": "earthsea", "title": "A Wizard of Earthsea", "author": {"name": "Le Guin"}, "url": "u", "model": "m2"},
]


def sent(sim: Simulator) -> dict[str, list[dict[str, str]]]:
    return {r.prompt: r.body["messages"] for r in sim.stats.requests}  # type: ignore[index]


def test_template_file_renders_each_record(sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path) -> None:
    template = tmp_path / "prompt.txt"
    template.write_text("Review {title} by {author.name}.\nKeep {{braces}}.\n")  # the final newline is dropped
    prompts = write_jsonl(tmp_path / "books.jsonl", RECORDS)
    ran = run_cli(prompts, "--template", str(template), "--system-template-text", "You review {author.name}.", sim=sim)
    assert ran.exit_code == 0, ran.stderr
    dune = "Review Dune by Herbert.\nKeep {braces}."
    assert sent(sim)[dune] == [
        {"role": "system", "content": "You review Herbert."},
        {"role": "user", "content": dune},
    ]
    assert (ran.out / "dune.txt").read_text() == expected_text(dune)
    entries = ran.by_id()
    assert entries["earthsea"]["model"] == "m2"
    assert entries["dune"]["request_hash"] == request_hash("gpt-4o-mini", sent(sim)[dune], {})
    assert ran.summary()["options"]["template"] == str(template)


def test_missing_fields_are_input_errors_before_anything_is_sent(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    rows = [*RECORDS, {"id": "x", "author": {"name": "A"}}, {"id": "y", "title": "T", "author": "A"}]
    prompts = write_jsonl(tmp_path / "books.jsonl", rows)
    ran = run_cli(prompts, "--template-text", "Review {title} by {author.name}.", sim=sim)
    assert ran.exit_code == 2
    assert f'{prompts}:3: --template needs what this record lacks: no field "title"' in ran.stderr
    assert f'{prompts}:4: --template needs what this record lacks: "author" is not an object' in ran.stderr
    assert sim.stats.requests == [] and not ran.out.exists()


def test_template_syntax_error_names_the_file_and_line(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    template = tmp_path / "t.txt"
    template.write_text('Review {title}.\nAnswer as {"score": 1}\n')
    prompts = write_jsonl(tmp_path / "books.jsonl", RECORDS)
    ran = run_cli(prompts, "--template", str(template), sim=sim)
    assert ran.exit_code == 2
    assert f"{template}:2: column 11: " in ran.stderr and "{{" in ran.stderr
    assert sim.stats.requests == [] and not ran.out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--template", "nope.txt"], "nope.txt: cannot read"),
        (["--template", "{t}", "--template-text", "x"], "give --template or --template-text, not both"),
        (["--system-template-text", "x"], "--system-template needs --template"),
        (["--template-text", "{title}", "--system-template-text", "s", "--system", "s"], "not both"),
        (["--template-text", "  "], "the template is empty"),
    ],
)
def test_template_options_that_cannot_work_are_usage_errors(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path, args: list[str], message: str
) -> None:
    prompts = write_jsonl(tmp_path / "books.jsonl", RECORDS)
    ran = run_cli(prompts, *[str(tmp_path / a) if a == "nope.txt" else a for a in args], sim=sim)
    assert ran.exit_code == 2
    assert message in ran.stderr
    assert sim.stats.requests == [] and not ran.out.exists()


def test_resume_follows_the_rendered_prompt(sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "books.jsonl", RECORDS)
    assert run_cli(prompts, "--template-text", "About {title}", sim=sim).exit_code == 0
    # The same template from a file (its final newline dropped) renders the same prompts: nothing to redo.
    template = tmp_path / "t.txt"
    template.write_text("About {title}\n")
    same = run_cli(prompts, "--template", str(template), sim=sim)
    assert (same.exit_code, len(sim.stats.requests)) == (0, 2)
    changed = run_cli(prompts, "--template-text", "Tell me about {title}", sim=sim)
    assert (changed.exit_code, len(sim.stats.requests)) == (0, 4)
