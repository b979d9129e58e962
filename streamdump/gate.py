"""The gate every request passes before it starts: a run-wide pause after a 429.

(Rate limits will hang off the same gate: one place decides when a request may start.)
"""

from __future__ import annotations

import asyncio


class Gate:
    def __init__(self) -> None:
        self._resume_at = 0.0

    def pause_for(self, seconds: float) -> None:
        """No request starts until ``seconds`` from now (a later pause wins)."""
        loop = asyncio.get_running_loop()
        self._resume_at = max(self._resume_at, loop.time() + seconds)

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        # A loop, not an Event: a later 429 may push the resume time further while we sleep.
        while (delay := self._resume_at - loop.time()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(delay)
