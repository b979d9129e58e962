"""Files in the out-dir: part files that grow as text streams in, atomic renames, error records,
and manifest lines.

All file I/O runs on one dedicated thread, so the event loop never blocks on a slow disk or a
shared filesystem.  Writes are group-committed: while the thread is busy with one batch, the next
pieces gather; when it is idle a piece is written as soon as it arrives, so ``tail -f`` on a part
file shows the response growing.  Operations on one file run in the order they were asked for,
and a manifest line is written only after the files it speaks of.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from .errors import DiskError, OutputDirError, PlantedLinkError
from .safefs import LinkInTheWay, SafeDir

MANIFEST = "manifest.jsonl"
SUMMARY = "summary.json"
_T = TypeVar("_T")
_Failures = tuple[dict[Path, DiskError], DiskError | None]  # a flush's: files by path, manifest lines


def encode_text(text: str) -> bytes:
    """UTF-8 bytes of ``text``; a surrogate pair is joined, a lone surrogate becomes U+FFFD."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")


def _split_trailing_surrogate(text: str) -> tuple[str, str]:
    """Hold back a high surrogate at the end: its pair may come in the next piece."""
    if text and "\ud800" <= text[-1] <= "\udbff":
        return text[:-1], text[-1]
    return text, ""


class PartFile:
    """One streamed file: ``<final>.part`` while open, renamed to ``<final>`` when complete."""

    __slots__ = ("_close", "_complete", "chars", "done", "error", "fd", "final", "part", "pending", "queued")

    def __init__(self, final: Path) -> None:
        self.final = final
        self.part = final.with_name(final.name + ".part")
        self.pending: list[str] = []
        self.chars = 0
        self.queued = False
        self.fd: int | None = None
        self._close = False
        self._complete = False
        self.done: asyncio.Future[None] | None = None
        self.error: OSError | None = None

    @property
    def closing(self) -> bool:
        """True once ``OutputWriter.finish`` has been asked for this file."""
        return self._close

    # -- called on the I/O thread -----------------------------------------------------------
    def apply(self, folder: SafeDir, text: str, close: bool, complete: bool) -> None:
        if self.error is not None:
            if close and self.fd is not None:
                fd, self.fd = self.fd, None
                os.close(fd)
            return
        try:
            if self.fd is None:
                self.fd = folder.create(self.part.name)  # fresh: a planted link raises
            if text:
                write_all(self.fd, encode_text(text))
            if close:
                fd, self.fd = self.fd, None
                try:
                    if complete:
                        folder.rename_own(fd, self.part.name, self.final.name)
                finally:
                    os.close(fd)
        except OSError as exc:
            self.error = exc
            if close and self.fd is not None:
                os.close(self.fd)
                self.fd = None


class OutputWriter:
    """Owns the I/O thread. Use as ``async with OutputWriter(out_dir) as writer``."""

    def __init__(self, out_dir: Path, *, manifest: str = MANIFEST) -> None:
        self.out_dir = out_dir
        self.manifest_path = out_dir / manifest
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="streamdump-io")
        self._dirty: list[PartFile] = []
        self._files: list[tuple[Path, bytes | None]] = []
        self._lines: list[bytes] = []
        self._waiters: list[asyncio.Future[_Failures]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._manifest_fd: int | None = None
        self._folder: SafeDir | None = None  # the out-dir, held open: every file is opened by name in it
        self._reserve: int | None = None  # a descriptor held back for the summary (see ``write_last``)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> OutputWriter:
        loop = asyncio.get_running_loop()
        try:
            self._folder = await loop.run_in_executor(self._executor, SafeDir, self.out_dir)
            self._manifest_fd = await loop.run_in_executor(self._executor, self._open_manifest)
            self._reserve = os.dup(self._manifest_fd)
        except OSError as exc:
            if self._folder is not None:
                self._folder.close()
            self._executor.shutdown(wait=False)
            where = exc.filename or self.manifest_path
            raise OutputDirError(f"{where}: cannot write: {exc.strerror or exc}") from None
        self._task = asyncio.create_task(self._flusher(), name="streamdump-writer")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await asyncio.shield(self._task)
        if self._manifest_fd is not None:
            os.close(self._manifest_fd)  # closing an fd does not block
        self._release_reserve()
        if self._folder is not None:
            self._folder.close()
        self._executor.shutdown(wait=True)

    def _open_manifest(self) -> int:
        fd = self.folder.open(self.manifest_path.name, os.O_RDWR | os.O_CREAT | os.O_APPEND, single=True)
        try:
            cut_torn_tail(fd)
        except OSError:
            os.close(fd)
            raise
        return fd

    @property
    def folder(self) -> SafeDir:
        """The out-dir, held open (only while the writer is)."""
        assert self._folder is not None
        return self._folder

    # -- the API the runner uses -----------------------------------------------------------
    def open(self, final: Path) -> PartFile:
        """Start a part file for ``final``; it is created (empty) on the next flush."""
        part = PartFile(final)
        self._mark(part)
        return part

    def write(self, part: PartFile, text: str) -> None:
        """Append text to a part file. Never blocks; the text is on disk moments later."""
        part.pending.append(text)
        part.chars += len(text)
        if not part.queued:
            self._mark(part)

    async def finish(self, part: PartFile, *, complete: bool) -> None:
        """Flush and close; rename to the final name when ``complete``. Raises DiskError, or
        PlantedLinkError when a link sits at the part file's name."""
        part._close, part._complete = True, complete
        part.done = asyncio.get_running_loop().create_future()
        if not part.queued:
            self._mark(part)
        await part.done

    async def write_file(self, path: Path, data: bytes | None) -> None:
        """Replace a small file atomically (``None``: remove it if present)."""
        await self.write_files([(path, data)])

    async def write_last(self, path: Path, data: bytes) -> None:
        """``write_file`` for the run's last file (the summary), with the descriptor held back for it
        since the start: a run that ran out of descriptors still writes it."""
        self._release_reserve()
        await self.write_file(path, data)

    def _release_reserve(self) -> None:
        if self._reserve is not None:
            fd, self._reserve = self._reserve, None
            os.close(fd)

    async def write_files(self, files: Sequence[tuple[Path, bytes | None]]) -> None:
        """``write_file`` for several files, in one trip to the I/O thread. Raises DiskError when
        one of them could not be written (another caller's failure is not ours)."""
        self._files.extend(files)
        failed, _ = await self._barrier()
        for path, _ in files:
            if path in failed:
                raise failed[path]

    async def record(self, entry: dict[str, Any]) -> None:
        """Append one manifest line; returns when it is written. Raises DiskError when it was not."""
        self._lines.append(json.dumps(entry, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n")
        _, failed = await self._barrier()
        if failed is not None:
            raise failed

    async def call(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn(*args)`` on the I/O thread (in turn with the writes: never two at once)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- the flusher ------------------------------------------------------------------------
    def _mark(self, part: PartFile) -> None:
        part.queued = True
        self._dirty.append(part)
        self._wake.set()

    async def _barrier(self) -> _Failures:
        """Wait for the next flush; what failed in it: files by path, and the manifest lines."""
        waiter: asyncio.Future[_Failures] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._wake.set()
        return await waiter

    async def _flusher(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            parts, self._dirty = self._dirty, []
            files, self._files = self._files, []
            lines, self._lines = self._lines, []
            waiters, self._waiters = self._waiters, []
            batch = []
            for part in parts:
                text, held = _split_trailing_surrogate("".join(part.pending))
                if part._close:
                    text, held = text + held, ""
                part.pending = [held] if held else []
                part.queued = False
                batch.append((part, text, part._close, part._complete))
            failures: _Failures = ({}, None)
            if batch or files or lines:
                failures = await loop.run_in_executor(self._executor, self._apply, batch, files, lines)
            for part, _, close, _ in batch:
                if close and part.done is not None and not part.done.done():
                    if part.error is not None:
                        part.done.set_exception(_part_error(part.part, part.error))
                    else:
                        part.done.set_result(None)
            for waiter in waiters:  # each hears of failures in its own flush, not of an earlier one
                if not waiter.done():
                    waiter.set_result(failures)
            if self._closing and not (self._dirty or self._files or self._lines or self._waiters):
                return

    def _apply(
        self,
        batch: list[tuple[PartFile, str, bool, bool]],
        files: list[tuple[Path, bytes | None]],
        lines: list[bytes],
    ) -> _Failures:
        """Runs on the I/O thread. Returns what could not be written: files, the manifest lines."""
        failed: dict[Path, DiskError] = {}
        lines_failed = None
        folder = self.folder
        for part, text, close, complete in batch:
            part.apply(folder, text, close, complete)
        for path, data in files:
            try:
                replace_file(folder, folder.name_of(path), data)
            except OSError as exc:
                failed[path] = _disk_error(path, exc)
        if lines and self._manifest_fd is not None:
            try:
                write_all(self._manifest_fd, b"".join(lines))
            except OSError as exc:
                lines_failed = _disk_error(self.manifest_path, exc)
        return failed, lines_failed


def cut_torn_tail(fd: int, *, block: int = 1 << 16) -> None:
    """Cut a torn last line (a run killed mid-write, a disk that filled) off a file of lines.

    It is a record that never finished, so its item is simply redone; left in place, the next
    line appended would sit after it, and the file would hold an invalid line forever.
    """
    end = os.fstat(fd).st_size
    if not end or os.pread(fd, 1, end - 1) == b"\n":
        return
    start = end
    while start > 0:
        start = max(0, start - block)
        newline = os.pread(fd, min(block, end - start), start).rfind(b"\n")
        if newline >= 0:
            os.ftruncate(fd, start + newline + 1)
            return
        end = start
    os.ftruncate(fd, 0)


def write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written (a write may be short, e.g. near a full disk)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def replace_file(folder: SafeDir, name: str, data: bytes | None) -> None:
    """Replace a small file in ``folder`` atomically (``None``: remove it if present).

    The data goes to a temporary file of a name nobody can plant a link at in advance, renamed over
    ``name`` (a link there is replaced, never followed).
    """
    if data is None:
        folder.remove(name)
        return
    temporary, fd = folder.create_temporary(name)
    try:
        try:
            write_all(fd, data)
            folder.rename_own(fd, temporary, name)
        finally:
            os.close(fd)
    except OSError:
        folder.remove(temporary)
        raise


def _disk_error(path: Path, exc: OSError) -> DiskError:
    return DiskError(f"{path}: {exc.strerror or exc}")


def _part_error(path: Path, exc: OSError) -> DiskError | PlantedLinkError:
    if isinstance(exc, LinkInTheWay):  # this item's business, not the disk's: the item fails, the run goes on
        return PlantedLinkError(f"{path}: {exc.strerror}", kind="planted_link")
    return _disk_error(path, exc)


def prepare_out_dir(out_dir: Path) -> None:
    """Create the out-dir and prove it is writable. Raises OutputDirError. Runs before any request."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        # A unique name: shards on other hosts probe the same dir, and pids repeat across hosts
        # and containers (often 1 in a pod).
        fd, probe = tempfile.mkstemp(prefix=".streamdump-probe-", dir=out_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputDirError(f"{out_dir}: cannot write the out-dir: {exc.strerror or exc}") from None
