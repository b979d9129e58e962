"""Reading manifests: every manifest in the dir, the latest entry per id across them (files only)."""

from __future__ import annotations

import json
from pathlib import Path

from streamdump.manifest import load_finished, manifest_paths, read_entry


def write(path: Path, entries: list[dict[str, object]], tail: str = "") -> None:
    path.write_text("".join(json.dumps(entry) + "\n" for entry in entries) + tail)


EARLY, LATE = "2025-01-01T00:00:00.000+00:00", "2025-06-01T00:00:00.000+00:00"


def entry(item: str, status: str = "ok", ended: str = EARLY, h: str = "h") -> dict[str, object]:
    return {"id": item, "status": status, "request_hash": h, "file": f"{item}.txt", "ended_at": ended}


def test_manifest_paths_lists_every_manifest_in_a_stable_order(tmp_path: Path) -> None:
    for name in (
        "manifest.2-of-10.jsonl",
        "manifest.1-of-2.jsonl",
        "manifest.10-of-10.jsonl",
        "manifest.jsonl",
        "manifest.2-of-2.jsonl",
        # not manifests
        "manifest.0-of-2.jsonl",
        "manifest.x-of-2.jsonl",
        "manifest.1-of-2.jsonl.tmp",
        "manifest.txt",
        "other.jsonl",
    ):
        (tmp_path / name).write_text("")
    (tmp_path / "manifest.3-of-3.jsonl").mkdir()
    assert [p.name for p in manifest_paths(tmp_path)] == [
        "manifest.jsonl",
        "manifest.1-of-2.jsonl",
        "manifest.2-of-2.jsonl",
        "manifest.2-of-10.jsonl",
        "manifest.10-of-10.jsonl",
    ]


def test_manifest_paths_of_an_empty_dir(tmp_path: Path) -> None:
    assert manifest_paths(tmp_path) == []
    assert load_finished(tmp_path) == {}


def test_load_finished_reads_every_shard_manifest(tmp_path: Path) -> None:
    write(tmp_path / "manifest.1-of-2.jsonl", [entry("a"), entry("b", "failed")])
    write(tmp_path / "manifest.2-of-2.jsonl", [entry("c")], tail='{"id": "d", "sta')
    finished = load_finished(tmp_path)
    assert {k: v.status for k, v in finished.items()} == {"a": "ok", "b": "failed", "c": "ok"}
    assert load_finished(tmp_path, keep=lambda item: item != "a").keys() == {"b", "c"}


def test_latest_entry_wins_within_and_across_manifests(tmp_path: Path) -> None:
    early, late = EARLY, LATE
    # An unsharded run redid "a" after the sharded one; the shard redid "b" after the unsharded one.
    write(
        tmp_path / "manifest.jsonl",
        [entry("a", "failed", early), entry("a", "ok", late, "new"), entry("b", "ok", early)],
    )
    write(tmp_path / "manifest.1-of-2.jsonl", [entry("a", "ok", early, "old"), entry("b", "failed", late)])
    finished = load_finished(tmp_path)
    assert (finished["a"].status, finished["a"].request_hash) == ("ok", "new")
    assert finished["b"].status == "failed"


def test_entries_can_be_read_back_where_they_were_found(tmp_path: Path) -> None:
    write(tmp_path / "manifest.2-of-3.jsonl", [entry("a"), entry("ünï"), entry("c", "failed")])
    for item, done in load_finished(tmp_path).items():
        assert done.source is not None
        back = read_entry(done.source, done.offset)
        assert back is not None and back["id"] == item and back["status"] == done.status
