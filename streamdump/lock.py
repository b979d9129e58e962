"""The out-dir lock: two runs that would write the same files in one out-dir cannot both proceed.

Runs may share an out-dir at the same time only when they are different shards of the same N:
their items, and so their files, are disjoint.  Everything else overlaps: the same shard twice, two
runs without ``--shard``, a run without ``--shard`` beside any shard, ``1/3`` beside ``1/4``.

How: each run holds an exclusive ``flock`` on its own file in ``DIR/.streamdump-locks/``
(``run.lock`` without a shard, ``K-of-N.lock`` with one) for as long as it runs.  Before taking it,
under a brief exclusive lock on ``gate`` (so two runs starting together cannot both miss each
other), it tries every lock file whose items overlap its own: one that is held means refusal
(``LockedError``), or, with ``wait``, sleeping in the kernel until it is released.

Why ``flock`` and not a pid file: the kernel drops the lock when the process ends, however it
ends (``kill -9``, the OOM killer), so a killed run never blocks the next one and there is no
staleness guess to get wrong (a pid means nothing on another host; a heartbeat needs clocks to
agree).  On NFS, Linux implements ``flock`` with byte-range locks, which NFSv4 (and NFSv3 with
lockd) enforce across hosts; a filesystem whose locks stay on one host (Lustre mounted with
``localflock``) protects only runs on the same host.  A filesystem that refuses locks altogether
gets a warning, and the run goes ahead unprotected.

Lock files are never deleted: deleting one another process has open (waiting on it) would let a
third run lock a new file of the same name while the second holds the old one.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import LockedError, OutputDirError
from .safefs import SafeDir
from .shard import Shard

if sys.platform != "win32":
    import fcntl

LOCK_DIR = ".streamdump-locks"
GATE = "gate"
_LOCK_NAME = re.compile(r"run\.lock|([1-9][0-9]*)-of-([1-9][0-9]*)\.lock")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BLOCKED = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES)


class LockUnsupportedError(OSError):
    """The filesystem (or platform) refuses file locks."""


def lock_name(shard: Shard | None) -> str:
    return "run.lock" if shard is None else f"{shard.tag}.lock"


def _parse_name(name: str) -> tuple[bool, Shard | None]:
    """(is a lock file, its shard) for a name in the lock dir."""
    match = _LOCK_NAME.fullmatch(name)
    if match is None:
        return False, None
    if match[1] is None:
        return True, None
    k, n = int(match[1]), int(match[2])
    return (True, Shard(k, n)) if k <= n else (False, None)


def overlaps(a: Shard | None, b: Shard | None) -> bool:
    """Whether runs of these shards could write the same files (no shard: every item)."""
    return True if a is None else a.overlaps(b)


def describe_shard(shard: Shard | None) -> str:
    return "a run without --shard" if shard is None else f"shard {shard}"


@dataclass(frozen=True, slots=True)
class Holder:
    """A lock file some other run holds."""

    path: Path
    shard: Shard | None

    def info(self) -> str:
        try:
            fd = os.open(self.path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
            with open(fd, "rb") as handle:
                data: Any = json.loads(handle.read(4096) or b"{}")
        except (OSError, ValueError):
            data = {}
        if not isinstance(data, dict) or "pid" not in data:
            return ""
        return f" (pid {data.get('pid')} on {data.get('host')}, since {data.get('started_at')})"


# -- flock, with the errors sorted out ---------------------------------------------------------
def _flock(fd: int, operation: int) -> bool:
    """True when locked; False when another holds it (non-blocking only). Raises LockUnsupportedError."""
    try:
        fcntl.flock(fd, operation)
    except OSError as exc:
        if exc.errno in _BLOCKED and operation & fcntl.LOCK_NB:
            return False
        raise LockUnsupportedError(exc.errno, exc.strerror or str(exc)) from None
    return True


def _open(lock_dir: SafeDir, name: str) -> int:
    """A lock file in the lock dir, never through a link; only a regular file with no other name
    (we write who holds it into our own: a planted hard link would be another file's content)."""
    try:
        return lock_dir.open(name, os.O_RDWR | os.O_CREAT, single=True)
    except OSError as exc:
        path = lock_dir.path / name
        raise OutputDirError(f"{path}: cannot open the lock file: {exc.strerror or exc}") from None


def _is_held(lock_dir: SafeDir, name: str) -> bool:
    """Whether another process holds lock file ``name`` (tried without waiting, released at once)."""
    fd = _open(lock_dir, name)
    try:
        return not _flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)  # closing releases it if we took it


def _wait_released(lock_dir: SafeDir, name: str) -> None:
    """Sleep in the kernel until whoever holds lock file ``name`` lets go (Ctrl-C interrupts)."""
    fd = _open(lock_dir, name)
    try:
        _flock(fd, fcntl.LOCK_SH)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _gate(lock_dir: SafeDir) -> Iterator[None]:
    fd = _open(lock_dir, GATE)
    try:
        _flock(fd, fcntl.LOCK_EX)  # held for milliseconds: the time to try a few lock files
        yield
    finally:
        os.close(fd)  # closing releases it


# -- the run's lock -----------------------------------------------------------------------------
def _try_acquire(lock_dir: SafeDir, shard: Shard | None) -> tuple[int | None, Holder | None]:
    """Under the gate: (our locked fd, None) or (None, the run in the way)."""
    with _gate(lock_dir):
        mine = lock_name(shard)
        fd = _open(lock_dir, mine)
        try:
            if not _flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB):
                os.close(fd)
                return None, Holder(lock_dir.path / mine, shard)
            with os.scandir(lock_dir.path if lock_dir.fd is None else lock_dir.fd) as entries:
                names = sorted(entry.name for entry in entries)
            for name in names:
                is_lock, other = _parse_name(name)
                if is_lock and name != mine and overlaps(shard, other) and _is_held(lock_dir, name):
                    os.close(fd)
                    return None, Holder(lock_dir.path / name, other)
            _stamp(fd, shard)  # still under the gate: a run refused next reads who holds it
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        return fd, None


def _refusal(out_dir: Path, shard: Shard | None, holder: Holder) -> str:
    theirs = describe_shard(holder.shard)
    if holder.shard == shard:
        what = f"{theirs} is already running in this out-dir{holder.info()}"
    else:
        what = (
            f"{theirs} is running in this out-dir{holder.info()}, and {describe_shard(shard)} would write "
            "some of the same files (runs that share an out-dir must be shards of the same N)"
        )
    return f"{out_dir}: {what}"


def _stamp(fd: int, shard: Shard | None) -> None:
    """Who holds the lock, for the message another run prints (never the key)."""
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "shard": None if shard is None else str(shard),
        "started_at": datetime.fromtimestamp(time.time(), UTC).isoformat(timespec="seconds"),
    }
    with contextlib.suppress(OSError):  # informative only
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)


@contextlib.contextmanager
def hold_lock(
    out_dir: Path,
    shard: Shard | None,
    *,
    wait: bool = False,
    notify: Callable[[str], None] = lambda message: None,
) -> Iterator[None]:
    """Hold the out-dir's lock for ``shard`` while the block runs.

    Raises LockedError when an overlapping run holds it (or waits for it to end, with ``wait``).
    """
    fd: int | None = None
    if sys.platform == "win32":  # pragma: no cover
        notify(f"streamdump: warning: cannot lock {out_dir} on Windows: going ahead without protection")
        yield
        return
    with _lock_dir(out_dir) as lock_dir:
        try:
            while True:
                fd, holder = _try_acquire(lock_dir, shard)
                if holder is None:
                    break
                message = _refusal(out_dir, shard, holder)
                if not wait:
                    raise LockedError(f"{message}; nothing was sent (wait for it with --wait-lock)")
                notify(f"streamdump: {message}; waiting for it to finish (--wait-lock)")
                _wait_released(lock_dir, holder.path.name)
        except LockUnsupportedError as exc:
            notify(
                f"streamdump: warning: cannot lock {out_dir} ({exc.strerror}): going ahead without protection "
                "against a second run writing the same files"
            )
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)  # closing releases the flock


@contextlib.contextmanager
def _lock_dir(out_dir: Path) -> Iterator[SafeDir]:
    """The lock dir, created if missing and opened without following a link planted in its place."""
    path = out_dir / LOCK_DIR
    try:
        with contextlib.suppress(FileExistsError):
            path.mkdir()
        lock_dir = SafeDir(path, follow=False)
    except OSError as exc:
        raise OutputDirError(f"{path}: cannot open the lock dir: {exc.strerror or exc}") from None
    with lock_dir:
        yield lock_dir
