"""Ids -> file names: plain ids as they are, anything else hashed; nothing escapes (pure)."""

from __future__ import annotations

import re

import pytest

from streamdump.naming import hashed_name, is_plain, safe_name

HASHED = re.compile(r"[A-Za-z0-9._-]{0,83}~[0-9a-f]{16}")


@pytest.mark.parametrize("item_id", ["poem", "chat-7", "a.b_c-d", "line-000001", "x" * 100, "v1.2b"])
def test_plain_ids_are_their_own_names(item_id: str) -> None:
    assert is_plain(item_id)
    assert safe_name(item_id) == item_id


@pytest.mark.parametrize(
    "item_id",
    [
        "../x",
        "/etc/passwd",
        "a/b",
        "a\\b",
        "nul\x00byte",
        "x" * 101,
        "x" * 1000,
        ".hidden",
        "..",
        ".",
        "CON",
        "con",
        "nul.txt",
        "COM1",
        "lpt9.md",
        "with space",
        "ünïcode",
        "emoji🙂",
        "",
        "a.error",
        "a.reasoning",
        "a.refusal",
        "a.tool_calls",
        "a.1",
        "v1.2",
        "a.part",
        "manifest",
        "Summary",
        "manifest.1-of-2",
        "summary.3-of-4",
        "batches",
        "Batches.jsonl",
        "tab\there",
        "new\nline",
    ],
)
def test_unsafe_ids_are_hashed_into_a_safe_name(item_id: str) -> None:
    assert not is_plain(item_id)
    name = safe_name(item_id)
    assert HASHED.fullmatch(name), name
    assert len(name) <= 100
    assert not name.startswith(".")


def test_hashed_names_differ_for_ids_that_sanitize_alike() -> None:
    assert hashed_name("a/b") != hashed_name("a b") != hashed_name("a\\b")
    assert hashed_name("a/b").startswith("a_b~")


def test_case_collision_forces_hashed_form_for_both() -> None:
    upper, lower = safe_name("Poem", case_collision=True), safe_name("poem", case_collision=True)
    assert upper != lower
    assert upper.casefold() != lower.casefold()
    assert "~" in upper and "~" in lower
