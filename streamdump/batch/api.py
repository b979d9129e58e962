"""The files and batches calls, with the run's retry policy, and the two searches that let an
interrupted submit find what it had already done on the server.

Errors are mapped by ``transport.mapped_errors`` (the run's one table): transient ones are retried
with backoff (``retry.backoff_delay``, Retry-After honoured); others, a 401 among them, are raised.
A retried write first looks for what the failed attempt may have done (an upload that was stored
but not answered, a batch that was created but not answered), so nothing is made twice.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ..errors import AttemptError
from ..retry import RetryPolicy, backoff_delay
from ..transport import mapped_errors
from .journal import FileRecord

if TYPE_CHECKING:
    import openai
    from openai.types import Batch, FileObject

T = TypeVar("T")
SEARCH_MARGIN = 3600.0  # a batch found by its metadata was created at most this long before we asked
DOWNLOAD_CHUNK = 1 << 20


class BatchCalls:
    """One client, one retry policy, and where retry notes go."""

    def __init__(
        self, client: openai.AsyncOpenAI, policy: RetryPolicy, *, notify: Callable[[str], None] = lambda m: None
    ) -> None:
        self.client = client
        self.policy = policy
        self.notify = notify

    async def call(
        self,
        what: str,
        fn: Callable[[], Awaitable[T]],
        *,
        look_first: Callable[[], Awaitable[T | None]] | None = None,
    ) -> T:
        """``fn()`` with retries; before each retry, ``look_first()`` may find it done already."""
        retries = 0
        while True:
            try:
                with mapped_errors(complete=lambda: False):
                    return await fn()
            except AttemptError as exc:
                if not exc.retryable or retries >= self.policy.max_retries:
                    raise
                retries += 1
                delay = backoff_delay(retries, self.policy, retry_after=exc.retry_after)
                self.notify(f"streamdump: {what} failed ({exc}); retrying in {delay:.1f} s")
                await asyncio.sleep(delay)
            if look_first is not None:
                found = await self.call(f"{what} (looking for it)", look_first)
                if found is not None:
                    return found

    # -- uploads --------------------------------------------------------------------------------
    async def find_upload(self, record: FileRecord) -> FileObject | None:
        """Our upload of this file, by its name (which carries the key and the digest) and size."""
        seen: set[str] = set()
        async for stored in self.client.files.list(purpose="batch"):
            if stored.id in seen:
                return None  # a server that ignores `after` serves the same page again: stop there
            seen.add(stored.id)
            if stored.filename == record.name and stored.bytes == record.bytes:
                return stored
        return None

    async def upload(self, record: FileRecord, path: Path, *, search_first: bool) -> FileObject:
        async def send() -> FileObject:
            return await self.client.files.create(file=path, purpose="batch")

        async def find() -> FileObject | None:
            return await self.find_upload(record)

        if search_first:
            found = await self.call(f"finding the upload of {record.name}", find)
            if found is not None:
                return found
        return await self.call(f"uploading {record.name}", send, look_first=find)

    # -- batches --------------------------------------------------------------------------------
    async def find_batch(self, record: FileRecord) -> Batch | None:
        """The batch made of this file, by the metadata we set on it (newest first, back to when we asked)."""
        since = (record.creating_since or 0.0) - SEARCH_MARGIN
        seen: set[str] = set()
        async for batch in self.client.batches.list(limit=100):
            if (batch.metadata or {}).get("streamdump_key") == record.key:
                return batch
            if batch.created_at < since or batch.id in seen:
                return None  # older than our request, or a server that ignores `after`
            seen.add(batch.id)
        return None

    async def create(self, record: FileRecord, *, search_first: bool) -> Batch:
        assert record.file_id is not None
        file_id = record.file_id

        async def send() -> Batch:
            return await self.client.batches.create(
                input_file_id=file_id,
                endpoint=record.endpoint,  # type: ignore[arg-type]
                completion_window="24h",
                metadata=record.metadata,
            )

        async def find() -> Batch | None:
            return await self.find_batch(record)

        if search_first:
            found = await self.call(f"finding the batch of {record.name}", find)
            if found is not None:
                return found
        return await self.call(f"creating the batch of {record.name}", send, look_first=find)

    async def retrieve(self, batch_id: str) -> Batch:
        return await self.call(f"asking about {batch_id}", lambda: self.client.batches.retrieve(batch_id))

    async def cancel(self, batch_id: str) -> Batch:
        return await self.call(f"cancelling {batch_id}", lambda: self.client.batches.cancel(batch_id))

    async def download(self, file_id: str, dest: Path) -> None:
        """The file's content into ``dest``, streamed (never whole in memory); ``dest`` appears complete."""
        part = dest.with_name(dest.name + ".part")

        async def fetch() -> None:
            handle = await asyncio.to_thread(open, part, "wb")
            try:
                async with self.client.files.with_streaming_response.content(file_id) as response:
                    async for chunk in response.iter_bytes(DOWNLOAD_CHUNK):
                        await asyncio.to_thread(handle.write, chunk)
            finally:
                await asyncio.to_thread(handle.close)
            await asyncio.to_thread(os.replace, part, dest)

        await self.call(f"downloading {file_id}", fetch)
