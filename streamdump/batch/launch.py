"""From a ``batch`` command's settings to its result: the out-dir's lock, one client, one event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

from .. import _constants as C
from ..errors import SetupError
from ..launch import Endpoint
from ..lock import hold_lock
from ..retry import RetryPolicy
from ..transport import make_clients
from .api import BatchCalls
from .journal import JOURNAL

T = TypeVar("T")


def require_journal(out_dir: Path) -> None:
    """Raises SetupError when DIR holds no batches (nothing was ever submitted into it)."""
    if not (out_dir / JOURNAL).is_file():
        raise SetupError(
            f"{out_dir}: no {JOURNAL} here: nothing was submitted with `streamdump batch submit -o {out_dir}`"
        )


@contextlib.contextmanager
def locked(out_dir: Path, *, wait: bool, notify: Callable[[str], None]) -> Iterator[None]:
    """The out-dir's lock, as ``run`` takes it (a batch command writes the same files)."""
    with hold_lock(out_dir, None, wait=wait, notify=notify):
        yield


def with_calls(
    endpoint: Endpoint,
    policy: RetryPolicy,
    work: Callable[[BatchCalls], Awaitable[T]],
    *,
    timeout: float = C.ATTEMPT_TIMEOUT,
    notify: Callable[[str], None] = lambda message: None,
) -> T:
    """Run ``work`` with a client for the endpoint (our retry policy; openai's retries off)."""

    async def go() -> T:
        client = make_clients(endpoint.base_url, endpoint.api_key, concurrency=1, attempt_timeout=timeout)[0]
        async with client:
            return await work(BatchCalls(client, policy, notify=notify))

    return asyncio.run(go())
