"""Where an item's files go, and which --ext values are accepted (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamdump.choices import ANSWER, REASONING, REFUSAL
from streamdump.layout import Layout, check_ext
from streamdump.naming import safe_name

OUT = Path("out")


@pytest.mark.parametrize(
    ("layout", "kind", "index", "name"),
    [
        (Layout(OUT, "a"), ANSWER, 0, "a.txt"),
        (Layout(OUT, "a", "md"), ANSWER, 0, "a.md"),
        (Layout(OUT, "a"), REASONING, 0, "a.reasoning.txt"),
        (Layout(OUT, "a", "md"), REASONING, 0, "a.reasoning.txt"),
        (Layout(OUT, "a"), REFUSAL, 0, "a.refusal.txt"),
        (Layout(OUT, "a", "md", n=3), ANSWER, 0, "a.1.md"),
        (Layout(OUT, "a", "md", n=3), ANSWER, 2, "a.3.md"),
        (Layout(OUT, "a", n=2), REASONING, 1, "a.2.reasoning.txt"),
        (Layout(OUT, "a", n=2), REFUSAL, 0, "a.1.refusal.txt"),
        # A choice nobody asked for still gets a file of its own.
        (Layout(OUT, "a"), ANSWER, 1, "a.2.txt"),
    ],
)
def test_streamed_file_names(layout: Layout, kind: str, index: int, name: str) -> None:
    assert layout.streamed(kind, index) == OUT / name


@pytest.mark.parametrize(
    ("layout", "tool_calls", "error", "answers"),
    [
        (Layout(OUT, "a"), "a.tool_calls.json", "a.error.json", ["a.txt"]),
        (Layout(OUT, "a", "json"), "a.tool_calls.json", "a.error.json", ["a.json"]),
        (Layout(OUT, "a", n=3), "a.1.tool_calls.json", "a.error.json", ["a.1.txt", "a.2.txt", "a.3.txt"]),
    ],
)
def test_side_file_names(layout: Layout, tool_calls: str, error: str, answers: list[str]) -> None:
    assert layout.tool_calls(0) == OUT / tool_calls
    assert layout.error() == OUT / error
    assert layout.answer_names() == answers


def test_side_paths_cover_every_streamed_file_and_its_part() -> None:
    names = [p.name for p in Layout(OUT, "a").side_paths([0])]
    assert names == [
        "a.txt",
        "a.txt.part",
        "a.reasoning.txt",
        "a.reasoning.txt.part",
        "a.refusal.txt",
        "a.refusal.txt.part",
        "a.tool_calls.json",
    ]


@pytest.mark.parametrize(("ext", "bare"), [("txt", "txt"), ("md", "md"), (".md", "md"), ("json", "json"), ("MD", "MD")])
def test_good_extensions(ext: str, bare: str) -> None:
    assert check_ext(ext) == bare


@pytest.mark.parametrize(
    ("ext", "message"),
    [
        ("", "letters or digits"),
        ("tar.gz", "letters or digits"),
        ("../x", "letters or digits"),
        ("a b", "letters or digits"),
        ("x" * 17, "letters or digits"),
        ("part", "own files"),
        ("PART", "own files"),
        ("tmp", "own files"),
    ],
)
def test_bad_extensions(ext: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_ext(ext)


@pytest.mark.parametrize("ext", ["txt", "md", "json", "jsonl"])
@pytest.mark.parametrize("item_id", ["a.1", "a.2", "a.error", "a.reasoning", "a.refusal", "a.tool_calls", "a.part"])
def test_no_id_lands_on_another_items_files(ext: str, item_id: str) -> None:
    """Item "a" with several choices and every side file; no other id's answer may be among them."""
    taken = {p.name.casefold() for p in Layout(OUT, "a", ext, n=3).side_paths([0, 1, 2])}
    taken |= {"a.error.json", "manifest.jsonl", "summary.json"}
    for n in (1, 3):
        other = Layout(OUT, safe_name(item_id), ext, n=n)
        names = {p.name.casefold() for p in [*other.side_paths(list(range(n))), other.error()]}
        assert not names & taken


@pytest.mark.parametrize("item_id", ["manifest", "summary", "Manifest", "SUMMARY"])
def test_ids_named_like_the_runs_own_files_are_hashed(item_id: str) -> None:
    assert "~" in safe_name(item_id)
    for ext in ("json", "jsonl"):
        assert Layout(OUT, safe_name(item_id), ext).answer().name not in ("manifest.jsonl", "summary.json")
