"""Sharding is a pure function of the id: disjoint, complete, stable (pure, plus the real input pipeline)."""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamdump.inputfile import iter_jobs, scan
from streamdump.jobs import Defaults
from streamdump.shard import Shard, ShardError, parse_shard, shard_of, tagged

DEFAULTS = Defaults(model="m")
SLURM_STEP_2 = {"SLURM_ARRAY_TASK_ID": "14", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_STEP": "2"}


# -- stable across machines and Python versions: pinned values -----------------------------------
@pytest.mark.parametrize(
    ("item_id", "shards"),
    [
        ("poem", [1, 2, 2, 4, 3, 4, 484]),
        ("chat-7", [1, 1, 1, 1, 4, 9, 89]),
        ("line-000001", [1, 1, 1, 3, 6, 5, 95]),
        ("../etc/passwd", [1, 1, 3, 1, 7, 3, 253]),
        ("ünïcode", [1, 1, 3, 3, 2, 5, 955]),
        ("🙂", [1, 1, 2, 1, 3, 7, 537]),
        ("a" * 500, [1, 1, 3, 3, 6, 5, 635]),
    ],
)
def test_shard_of_is_pinned(item_id: str, shards: list[int]) -> None:
    assert [shard_of(item_id, n) for n in (1, 2, 3, 4, 7, 10, 1000)] == shards


@pytest.mark.parametrize("n", [1, 2, 3, 8, 100, 4096])
def test_shard_of_is_the_documented_formula(n: int) -> None:
    # README: int(first 16 hex digits of sha256(utf-8 id)) % N + 1; any tool can compute it.
    for item_id in ("poem", "x" * 40, "日本語", "line-000042"):
        digest = hashlib.sha256(item_id.encode()).hexdigest()
        assert shard_of(item_id, n) == int(digest[:16], 16) % n + 1


def test_shards_are_even() -> None:
    ids = [f"item-{i}" for i in range(20_000)]
    counts = Counter(shard_of(item_id, 8) for item_id in ids)
    assert set(counts) == set(range(1, 9))
    assert all(abs(count - 2500) < 250 for count in counts.values()), counts


# -- K/N, auto/N -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "env", "expected"),
    [
        ("1/1", {}, Shard(1, 1)),
        ("2/4", {}, Shard(2, 4)),
        (" 4 / 4 ", {}, Shard(4, 4)),
        ("auto/4", {"JOB_COMPLETION_INDEX": "0"}, Shard(1, 4)),
        ("auto/4", {"JOB_COMPLETION_INDEX": "3"}, Shard(4, 4)),
        ("auto/4", {"SLURM_ARRAY_TASK_ID": "0"}, Shard(1, 4)),
        ("auto/4", {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4"}, Shard(3, 4)),
        ("auto/4", {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1"}, Shard(4, 4)),
        ("auto/3", SLURM_STEP_2, Shard(3, 3)),
        # A Kubernetes pod is not inside a SLURM array: its index wins if both are set.
        ("auto/2", {"JOB_COMPLETION_INDEX": "1", "SLURM_ARRAY_TASK_ID": "0"}, Shard(2, 2)),
        ("auto/2", {"JOB_COMPLETION_INDEX": "", "SLURM_ARRAY_TASK_ID": "1"}, Shard(2, 2)),
    ],
)
def test_parse_shard(spec: str, env: dict[str, str], expected: Shard) -> None:
    assert parse_shard(spec, env) == expected


@pytest.mark.parametrize(
    ("spec", "env", "message"),
    [
        ("0/4", {}, "K must be between 1 and N"),
        ("5/4", {}, "K must be between 1 and N"),
        ("1/0", {}, "N must be at least 1"),
        ("2", {}, "expected K/N"),
        ("a/b", {}, "expected K/N"),
        ("-1/4", {}, "expected K/N"),
        ("1/4/2", {}, "expected K/N"),
        ("auto/4", {}, "none of JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID is set"),
        ("auto/4", {"JOB_COMPLETION_INDEX": "4"}, "outside 0..3"),
        ("auto/4", {"JOB_COMPLETION_INDEX": "x"}, "not an integer"),
        ("auto/4", {"SLURM_ARRAY_TASK_ID": "4"}, "is not task 1..4"),
        ("auto/4", {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "8"}, "has 8 tasks"),
        ("auto/4", {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_STEP": "2"}, "is not task 1..4"),
    ],
)
def test_parse_shard_refuses(spec: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(ShardError, match=message):
        parse_shard(spec, env)


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        (Shard(1, 4), Shard(2, 4), False),
        (Shard(1, 4), Shard(1, 4), True),
        (Shard(1, 4), Shard(1, 3), True),
        (Shard(1, 4), None, True),
        (Shard(1, 1), Shard(1, 1), True),
    ],
)
def test_overlaps(a: Shard, b: Shard | None, overlap: bool) -> None:
    assert a.overlaps(b) is overlap
    if b is not None:
        assert b.overlaps(a) is overlap


@pytest.mark.parametrize(
    ("name", "shard", "expected"),
    [
        ("results.jsonl", Shard(2, 4), "results.2-of-4.jsonl"),
        ("results.jsonl", None, "results.jsonl"),
        ("results", Shard(1, 2), "results.1-of-2"),
        ("a.b.jsonl", Shard(3, 3), "a.b.3-of-3.jsonl"),
        (".hidden", Shard(1, 2), ".hidden.1-of-2"),
    ],
)
def test_tagged(name: str, shard: Shard | None, expected: str) -> None:
    assert tagged(Path("/d") / name, shard) == Path("/d") / expected


# -- disjoint and complete through the real input pipeline, over many random id sets ----------------
def _shard_ids(lines: list[str], n: int) -> list[list[str]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.jsonl"
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        result = []
        for k in range(1, n + 1):
            plan = scan(str(path), DEFAULTS, shard=Shard(k, n))
            ids = [job.id for job in iter_jobs(plan, DEFAULTS)]
            assert plan.count == len(ids)
            result.append(ids)
        return result


ID_SETS = st.lists(st.text(min_size=1, max_size=30), min_size=0, max_size=60, unique=True)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ids=ID_SETS, n=st.integers(1, 12), seed=st.integers(0, 2**32))
def test_shards_are_disjoint_complete_and_independent_of_order(ids: list[str], n: int, seed: int) -> None:
    lines = [json.dumps({"id": item_id, "prompt": "p"}) for item_id in ids]
    shards = _shard_ids(lines, n)
    taken = [item_id for shard in shards for item_id in shard]
    assert sorted(taken) == sorted(ids)  # complete, and no id in two shards
    assert len(set(taken)) == len(taken)
    random.Random(seed).shuffle(lines)
    shuffled = _shard_ids(lines, n)
    assert [sorted(s) for s in shuffled] == [sorted(s) for s in shards]  # input order does not matter
    # And every shard is exactly the ids shard_of gives it.
    for k, shard in enumerate(shards, start=1):
        assert all(shard_of(item_id, n) == k for item_id in shard)


def test_the_whole_file_is_checked_whatever_the_shard(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    ids = [f"i{n}" for n in range(40)]
    bad_line = next(i for i, item_id in enumerate(ids) if shard_of(item_id, 2) == 2) + 1
    lines = [json.dumps({"id": item_id, "prompt": "p"}) for item_id in ids]
    lines[bad_line - 1] = lines[bad_line - 1].replace('"prompt"', '"prompts"')
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(Exception, match=f"p.jsonl:{bad_line}: a line needs"):
        scan(str(path), DEFAULTS, shard=Shard(1, 2))  # the bad line is in shard 2


def test_names_are_the_same_in_every_shard(tmp_path: Path) -> None:
    # "Poem" and "poem" collide when case is ignored: both are hashed, whichever shard runs them.
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps({"id": i, "prompt": "p"}) + "\n" for i in ("Poem", "poem", "other")))
    whole = {job.id: job.name for job in iter_jobs(scan(str(path), DEFAULTS), DEFAULTS)}
    for k in (1, 2, 3):
        plan = scan(str(path), DEFAULTS, shard=Shard(k, 3))
        for job in iter_jobs(plan, DEFAULTS):
            assert job.name == whole[job.id]
    assert "~" in whole["Poem"] and "~" in whole["poem"]
