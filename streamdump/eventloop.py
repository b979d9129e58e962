"""Which event loop a run uses: uvloop's where the platform has it (Linux, macOS), else asyncio's.

uvloop reads a socket in about a third of asyncio's CPU (issue 12: 7 vs 23 us a read here), and
every streamed chunk is one read.  It is a dependency only where it builds (see pyproject's marker).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory, or None (asyncio's default loop) where uvloop is not installed."""
    try:
        import uvloop
    except ImportError:  # Windows, or an install without it
        return None
    return uvloop.new_event_loop
