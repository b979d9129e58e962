"""The prompts file: ``scan`` checks every line before anything is sent, then ``iter_jobs`` (or
``aiter_jobs``, off the event loop) reads it again lazily to feed the workers. Lines become jobs in
``jobs.parse_line``.

Memory stays flat in the number of lines apart from one small integer per id, which duplicate
detection needs.  Standard input is copied to a temporary file by ``scan`` so it can be read twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass
from typing import IO, BinaryIO

from .blocklines import read_lines
from .digests import DigestTable
from .errors import InputError, LineError
from .jobs import MAX_PROBLEMS, Defaults, Job, _check_id, default_id, parse_line
from .jsonline import load_line
from .naming import fold_key, hashed_name, safe_name
from .shard import Shard


def _digest(text: str) -> int:
    raw = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(raw, "little")


@dataclass(frozen=True, slots=True)
class InputPlan:
    """What ``scan`` learned: where to read the lines again, how many jobs, which ids collide.

    With a shard, ``count`` and ``iter_jobs`` cover only its items; names (and the check) cover the
    whole file, so every shard names an item the same way.
    """

    path: str
    display: str
    count: int
    collided: frozenset[int]
    temporary: bool = False
    shard: Shard | None = None
    size: int | None = None  # bytes checked; the run reads no further
    in_file: int = 0  # prompts in the whole file, every shard's
    ids: DigestTable | None = None  # digests of every id in the file

    def contains(self, item_id: str) -> bool:
        """The id is one of this run's items: in the file, and in the shard when there is one."""
        in_file = self.ids is None or _digest(item_id) in self.ids
        return in_file and (self.shard is None or self.shard.contains(item_id))

    @property
    def empty(self) -> bool:
        """The file holds no prompts at all (blank, or only blank lines)."""
        return self.in_file == 0

    def name_for(self, item_id: str) -> str:
        key = fold_key(item_id)
        return safe_name(item_id, case_collision=key is not None and _digest(key) in self.collided)

    def discard(self) -> None:
        if self.temporary:
            os.unlink(self.path)


class _Lines:
    """(line number, text) for each non-blank line; text None when it is not UTF-8.

    Every raw line, blank or not, is also written to ``copy`` when one is given; ``consumed``
    counts the bytes read, and reading stops at ``limit`` bytes when one is given.
    """

    def __init__(self, stream: IO[bytes], copy: IO[bytes] | None = None, limit: int | None = None) -> None:
        self.stream, self.copy, self.limit = stream, copy, limit
        self.consumed = 0

    def __iter__(self) -> Iterator[tuple[int, str | None]]:
        copy, limit = self.copy, self.limit
        for number, raw in enumerate(self.stream, start=1):
            if limit is not None and self.consumed >= limit:
                return
            self.consumed += len(raw)
            if copy is not None:
                copy.write(raw)
            yield from _line(number, raw)


def _line(number: int, raw: bytes) -> Iterator[tuple[int, str | None]]:
    if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if not raw.strip():
        return
    try:
        yield number, raw.decode("utf-8").rstrip("\r\n")  # so JSON errors point into the line
    except UnicodeDecodeError:
        yield number, None


def _open_source(path: str) -> tuple[BinaryIO, str, bool]:
    """Open the prompts file; standard input is copied to a temporary file as it is read."""
    if path == "-":
        return sys.stdin.buffer, "<stdin>", True
    return open(path, "rb"), path, False


def scan(
    path: str, defaults: Defaults, *, on_job: Callable[[Job], None] | None = None, shard: Shard | None = None
) -> InputPlan:
    """Check every line of the prompts file (all shards). Raises InputError listing every problem found.

    Only the shard's items are counted, and ``on_job`` sees each of them as it is read (the dry run
    counts tokens in this one pass).
    """
    problems: list[str] = []
    more = 0
    first_line = DigestTable()  # id digest -> line it first appeared on
    folded = DigestTable()  # digests of case-folded plain names seen
    collided: set[int] = set()  # ... those that two different ids share
    hashed_seen = DigestTable()  # case-folded hashed name digest -> line
    count = in_file = 0
    try:
        source, display, spool = _open_source(path)
    except OSError as exc:
        raise InputError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    copy = tempfile.NamedTemporaryFile(prefix="streamdump-stdin-", delete=False) if spool else None  # noqa: SIM115

    def problem(line: int, message: str) -> None:
        nonlocal more
        if len(problems) < MAX_PROBLEMS:
            problems.append(f"{display}:{line}: {message}")
        else:
            more += 1

    lines = _Lines(source, copy)
    try:
        for number, text in lines:
            if text is None:
                problem(number, "not valid UTF-8")
                continue
            try:
                job = parse_line(text, number, defaults, with_hash=False)
            except LineError as exc:
                problem(number, str(exc))
                continue
            except (ValueError, TypeError, RecursionError) as exc:  # a check that hostile JSON got past
                problem(number, f"cannot use this line: {type(exc).__name__}: {exc}")
                continue
            in_file += 1
            if shard is None or shard.contains(job.id):
                count += 1
                if on_job is not None:
                    on_job(job)
            first = first_line.setdefault(_digest(job.id), number)
            if first is not None:
                problem(number, f"duplicate id {job.id!r} (first on line {first})")
                continue
            key = fold_key(job.id)
            if key is not None:
                # Not a duplicate, so a folded name seen before belongs to an id differing in case.
                key_digest = _digest(key)
                if folded.setdefault(key_digest) is not None:
                    collided.add(key_digest)
            else:
                other = hashed_seen.setdefault(_digest(hashed_name(job.id).casefold()), number)
                if other is not None:
                    problem(number, f"id {job.id!r} maps to the same file as the id on line {other}")
    except OSError as exc:
        problems.append(f"{display}: read failed: {exc.strerror or exc}")
    finally:
        if copy is not None:
            copy.close()
        if source is not sys.stdin.buffer:
            source.close()

    if problems:
        if copy is not None:
            os.unlink(copy.name)
        raise InputError(problems, more=more)
    # Later runs of the lines read only these checked bytes: a line appended meanwhile (a file
    # still being written, a cron job adding work) waits for the next run.
    size = lines.consumed
    if copy is not None:
        return InputPlan(
            copy.name,
            display,
            count,
            frozenset(collided),
            temporary=True,
            shard=shard,
            size=size,
            in_file=in_file,
            ids=first_line,
        )
    return InputPlan(path, display, count, frozenset(collided), shard=shard, size=size, in_file=in_file, ids=first_line)


def read_ids(path: str) -> list[str]:
    """Only the id of every line (``line-N`` where there is none), for comparing a file with an
    out-dir when the shape of its requests is unknown. Raises InputError for unreadable lines."""
    ids: list[str] = []
    problems: list[str] = []
    try:
        source, display, _ = _open_source(path)
    except OSError as exc:
        raise InputError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    try:
        for number, text in _Lines(source):
            try:
                obj = load_line(text) if text is not None else None
                if not isinstance(obj, dict):
                    raise LineError("expected a JSON object" if text is not None else "not valid UTF-8")
                key = "custom_id" if "custom_id" in obj else "id"
                ids.append(_check_id(obj.get(key), key) or default_id(number))
            except (ValueError, LineError) as exc:
                if len(problems) < MAX_PROBLEMS:
                    problems.append(f"{display}:{number}: {exc}")
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    if problems:
        raise InputError(problems)
    return ids


def iter_jobs(plan: InputPlan, defaults: Defaults) -> Iterator[Job]:
    """Read the (already checked) input again, lazily, yielding each Job with its file name.

    Raises LineError if the checked part of the file was rewritten since.
    """
    with open(plan.path, "rb") as source:
        for number, text in _Lines(source, limit=plan.size):
            if text is None:  # scan() has already refused such a file
                continue
            job = parse_line(text, number, defaults)
            if plan.shard is not None and not plan.shard.contains(job.id):
                continue
            yield _with_name(job, plan.name_for(job.id))


async def aiter_jobs(plan: InputPlan, defaults: Defaults) -> AsyncGenerator[Job, None]:
    """``iter_jobs``, with the file read off the event loop in large blocks (see ``blocklines``)."""
    number = 0
    lines = read_lines(plan.path, limit=plan.size)
    async with contextlib.aclosing(lines):  # closed with this generator: its file too, on the loop
        async for raw in lines:
            number += 1
            for _, text in _line(number, raw):
                if text is None:  # scan() has already refused such a file
                    continue
                job = parse_line(text, number, defaults)
                if plan.shard is None or plan.shard.contains(job.id):
                    yield _with_name(job, plan.name_for(job.id))


def _with_name(job: Job, name: str) -> Job:
    return Job(job.id, job.line, job.model, job.request, job.params, name, job.request_hash, job.api)
