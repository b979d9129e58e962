"""Sharding: which items a run of ``--shard K/N`` takes, and the names of its own files. Pure; no I/O.

An item belongs to shard ``sha256(utf-8 id)[:8] as a big-endian integer % N + 1``: a function of
the id alone, so the N shards of one file are disjoint, cover it, and do not depend on the machine,
the Python version (never ``hash()``, which is salted per process) or the order of the lines.

``K`` may also come from the index variable a job engine sets, with ``--shard auto/N``:

==========================  =========================================  ==================
variable                    engine                                     K
==========================  =========================================  ==================
``JOB_COMPLETION_INDEX``    Kubernetes Indexed Job (0 .. N-1)          index + 1
``SLURM_ARRAY_TASK_ID``     SLURM job array (``--array=MIN-MAX:STEP``) (id - MIN) / STEP + 1
==========================  =========================================  ==================
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

AUTO_VARIABLES = ("JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID")
_SPEC = re.compile(r"\s*(auto|[0-9]+)\s*/\s*([0-9]+)\s*")


class ShardError(ValueError):
    """A --shard value that cannot be used (the message says why)."""


def shard_of(item_id: str, n: int) -> int:
    """The shard (1 .. n) an id belongs to."""
    digest = hashlib.sha256(item_id.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % n + 1


@dataclass(frozen=True, slots=True)
class Shard:
    k: int
    n: int

    def __post_init__(self) -> None:
        if not 1 <= self.k <= self.n:
            raise ShardError(f"{self.k}/{self.n}: K must be between 1 and N")

    def __str__(self) -> str:
        return f"{self.k}/{self.n}"

    @property
    def tag(self) -> str:
        """``K-of-N``: the part of this shard's file names that keeps shards apart."""
        return f"{self.k}-of-{self.n}"

    def contains(self, item_id: str) -> bool:
        return shard_of(item_id, self.n) == self.k

    def overlaps(self, other: Shard | None) -> bool:
        """Whether two runs could write the same item's files (no shard: every item)."""
        if other is None or self.n != other.n:
            return True
        return self.k == other.k


def parse_shard(spec: str, environ: Mapping[str, str]) -> Shard:
    """``K/N``, or ``auto/N`` with K from a job engine's index variable. Raises ShardError."""
    match = _SPEC.fullmatch(spec)
    if match is None:
        raise ShardError(f"{spec!r}: expected K/N (e.g. 2/8) or auto/N")
    k_text, n_text = match.groups()
    n = int(n_text)
    if n < 1:
        raise ShardError(f"{spec}: N must be at least 1")
    if k_text != "auto":
        return Shard(int(k_text), n)
    return Shard(_auto_k(n, environ), n)


def _int_var(environ: Mapping[str, str], name: str, default: int | None = None) -> int:
    value = environ.get(name)
    if value is None or value.strip() == "":
        if default is None:
            raise ShardError(f"{name} is not set")
        return default
    try:
        return int(value)
    except ValueError:
        raise ShardError(f"{name}={value!r} is not an integer") from None


def _auto_k(n: int, environ: Mapping[str, str]) -> int:
    if environ.get("JOB_COMPLETION_INDEX", "").strip():
        index = _int_var(environ, "JOB_COMPLETION_INDEX")
        k = index + 1
        if not 1 <= k <= n:
            raise ShardError(f"auto/{n}: JOB_COMPLETION_INDEX={index} is outside 0..{n - 1} (set completions: {n})")
        return k
    if environ.get("SLURM_ARRAY_TASK_ID", "").strip():
        task = _int_var(environ, "SLURM_ARRAY_TASK_ID")
        low = _int_var(environ, "SLURM_ARRAY_TASK_MIN", 0)
        step = _int_var(environ, "SLURM_ARRAY_TASK_STEP", 1) or 1
        count = environ.get("SLURM_ARRAY_TASK_COUNT", "").strip()
        if count and count != str(n):
            raise ShardError(
                f"auto/{n}: the SLURM array has {count} tasks (SLURM_ARRAY_TASK_COUNT), not {n}: "
                f"some shards would never run; submit with --array=0-{n - 1}"
            )
        offset, rest = divmod(task - low, step)
        k = offset + 1
        if rest or not 1 <= k <= n:
            raise ShardError(
                f"auto/{n}: SLURM_ARRAY_TASK_ID={task} (array from {low}, step {step}) is not task 1..{n} "
                f"of the array; submit with --array=0-{n - 1}"
            )
        return k
    raise ShardError(f"auto/{n}: none of {', '.join(AUTO_VARIABLES)} is set; give K yourself (--shard K/{n})")


# -- the file names a run writes -------------------------------------------------------------
def manifest_name(shard: Shard | None) -> str:
    return "manifest.jsonl" if shard is None else f"manifest.{shard.tag}.jsonl"


def summary_name(shard: Shard | None) -> str:
    return "summary.json" if shard is None else f"summary.{shard.tag}.json"


def tagged(path: Path, shard: Shard | None) -> Path:
    """A path the user named, made this shard's own: ``results.jsonl`` -> ``results.2-of-4.jsonl``."""
    if shard is None:
        return path
    suffix = path.suffix if path.stem else ""
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    return path.with_name(f"{stem}.{shard.tag}{suffix}")
