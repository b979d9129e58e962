"""run_cleanup: a slow cleanup is waited for; a cancelled caller waits a bounded time, never forever."""

from __future__ import annotations

import asyncio

import pytest

from streamdump.cleanup import run_cleanup


async def _slow(done: list[str], delay: float) -> None:
    await asyncio.sleep(delay)
    done.append("cleaned")


def test_a_cleanup_slower_than_the_limit_is_waited_for_when_nothing_is_cancelled() -> None:
    done: list[str] = []
    asyncio.run(run_cleanup(_slow(done, 0.05), limit=0.001))  # no TimeoutError: a busy disk is no failure
    assert done == ["cleaned"]


def test_errors_of_the_cleanup_propagate() -> None:
    async def broken() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        asyncio.run(run_cleanup(broken()))


def test_cancelling_the_caller_lets_a_quick_cleanup_finish_then_cancels() -> None:
    done: list[str] = []

    async def main() -> None:
        task = asyncio.create_task(run_cleanup(_slow(done, 0.02), limit=5))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert done == ["cleaned"]

    asyncio.run(main())


@pytest.mark.parametrize("already_cancelling", [False, True])
def test_a_cancelled_caller_gives_a_stuck_cleanup_only_the_limit(already_cancelling: bool) -> None:
    async def stuck() -> None:
        await asyncio.Event().wait()

    async def item() -> None:
        if already_cancelling:
            try:
                await asyncio.Event().wait()
            finally:  # cleanup in a finally block of a task being cancelled
                await run_cleanup(stuck(), limit=0.01)
        else:
            await run_cleanup(stuck(), limit=0.01)

    async def main() -> None:
        task = asyncio.create_task(item())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):  # the cancellation, not a TimeoutError
            await asyncio.wait_for(task, 5)

    asyncio.run(main())
