"""What ``run`` must leave to the batches: items in a batch that may still bring results."""

from __future__ import annotations

from pathlib import Path

from .journal import read_journal


def pending_ids(out_dir: Path) -> set[str]:
    """Ids of items in an unfinished (or not yet collected) batch of this out-dir; blocking."""
    return read_journal(out_dir).pending_ids()
