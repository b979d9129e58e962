"""Cleanup that must happen (close a part file, append a manifest line), also on cancellation.

It runs shielded, so a cancellation does not cut it short.  It is time-boxed only once the caller
is being cancelled (a run shutting down on a signal must end within seconds); otherwise it takes
as long as the disk needs: a busy I/O thread is not a failure, and a timeout there would turn a
slow flush into a crashed run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from . import _constants as C


async def run_cleanup(cleanup: Awaitable[None], *, limit: float = C.CLEANUP_TIMEOUT) -> None:
    """Await ``cleanup`` to its end; once the caller is cancelled, give it at most ``limit`` seconds.

    Its own errors propagate.  A cleanup cut short by the time box is left running, and the
    caller's cancellation goes on.
    """
    task = asyncio.ensure_future(cleanup)
    current = asyncio.current_task()
    if current is not None and not current.cancelling():
        try:
            await asyncio.shield(task)
            return
        except asyncio.CancelledError:
            await _bounded(task, limit)
            raise
    await _bounded(task, limit)


async def _bounded(task: asyncio.Future[None], limit: float) -> None:
    done, _ = await asyncio.wait({task}, timeout=limit)
    if done:
        task.result()
