"""The compact digest table behaves like a dict of first values (pure)."""

from __future__ import annotations

import random

from streamdump.digests import DigestTable


def test_matches_a_dict_through_many_growths() -> None:
    rng = random.Random(7)
    table, reference = DigestTable(), {}
    keys = [rng.getrandbits(64) for _ in range(20_000)] + [0, 1, 2**64 - 1]
    keys += keys[:500]  # repeats
    for line, key in enumerate(keys):
        expected = reference.get(key or 1)
        assert table.setdefault(key, line) == expected
        reference.setdefault(key or 1, line)
    assert table.size == len(reference)
    assert all(key in table for key in keys)
    assert rng.getrandbits(64) not in table


def test_colliding_low_bits_probe_linearly() -> None:
    table = DigestTable()
    keys = [(n << 40) | 5 for n in range(1, 100)]  # same low bits: same first slot
    for line, key in enumerate(keys):
        assert table.setdefault(key, line) is None
    assert [table.setdefault(key, 999) for key in keys] == list(range(len(keys)))
