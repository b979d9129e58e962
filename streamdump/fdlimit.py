"""Enough file descriptors for the run, worked out before it starts.

At ``-c 500`` under a common ``ulimit -n 256``, connections failed with "All connection attempts
failed" and part files with "Too many open files", and the run stopped half-recorded.  Before
anything is sent, the run works out what it needs (``descriptors_needed``), raises its own soft
``RLIMIT_NOFILE`` that far when the hard limit (and the platform) allow, and otherwise refuses
with both numbers, so the user can lower ``-c`` or raise the limit.
"""

from __future__ import annotations

import sys

from . import _constants as C
from .errors import SetupError

if sys.platform != "win32":
    import resource


def descriptors_needed(concurrency: int, *, simulator: bool = False) -> int:
    """File descriptors a run of ``concurrency`` streams needs (the built-in simulator's side of
    each connection counted too when it runs in this process)."""
    return concurrency * (C.FDS_PER_ITEM + (1 if simulator else 0)) + C.FDS_MARGIN


def ensure_descriptors(concurrency: int, *, simulator: bool = False) -> None:
    """Raise the soft limit on open files to what the run needs. Raises SetupError (naming what it
    needs and what it may have) when the hard limit or the platform does not allow it."""
    if sys.platform == "win32":  # pragma: no cover - no RLIMIT_NOFILE; the C runtime's own limit applies
        return
    need = descriptors_needed(concurrency, simulator=simulator)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return
    per_item = C.FDS_PER_ITEM + (1 if simulator else 0)
    if hard != resource.RLIM_INFINITY and hard < need:
        fits = max(1, (hard - C.FDS_MARGIN) // per_item)
        raise SetupError(
            f"-c {concurrency} needs {need} open files (a connection and part files for each stream, and "
            f"{C.FDS_MARGIN} more), and this process may open at most {hard} (ulimit -Hn): lower -c to {fits} "
            "or raise the limit; nothing was sent"
        )
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    except (ValueError, OSError) as exc:
        raise SetupError(
            f"-c {concurrency} needs {need} open files, and this process may open {soft}: raising the limit "
            f"failed ({exc}); lower -c or raise ulimit -n; nothing was sent"
        ) from None
