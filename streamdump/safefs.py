"""Files in a shared directory, by name, never through a link someone else planted there.

An out-dir may be shared by several users or machines (the README recommends it for shards).
Anyone who can write to it can plant ``<id>.txt.part -> /home/you/.bashrc`` before a run; a write
that follows the link truncates the target, and a rename moves the link into place as the answer.
So every file streamdump creates or appends to is opened relative to its directory (held open
as a descriptor, so the directory cannot be swapped under us), with ``O_NOFOLLOW``, and a file
meant to be fresh is created with ``O_EXCL`` (which also refuses a planted hard link's name).
A link in the way raises ``LinkInTheWay``: the caller fails the item, or refuses to start; the
link's target is never touched.

The directory itself is opened normally (``follow=True``): an out-dir that is a symlink is the
user's choice, not an attack.  Directories streamdump makes inside it are opened with ``follow=False``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_FRESH = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
# Windows opens no directory and has no *at() calls: there, names are joined to the path (and a
# symlink needs privileges to plant). Everywhere else, every call is relative to the directory.
_AT = os.open in os.supports_dir_fd and os.unlink in os.supports_dir_fd and os.stat in os.supports_dir_fd


class LinkInTheWay(OSError):
    """A symbolic link (or another file than ours) sits where a file of ours belongs."""

    def __init__(self, path: Path, what: str = "a symbolic link") -> None:
        super().__init__(
            errno.ELOOP, f"{what} is in the way: streamdump follows no link there (its target was not touched)"
        )
        self.filename = str(path)


class SafeDir:
    """A directory held open; its files are opened, created, renamed and removed by name."""

    __slots__ = ("fd", "path")

    def __init__(self, path: Path, *, follow: bool = True) -> None:
        self.path = path
        self.fd: int | None = None
        if not _AT:  # Windows
            if not follow and path.is_symlink():
                raise LinkInTheWay(path)
            return
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC | (0 if follow else _NOFOLLOW)
        try:
            self.fd = os.open(path, flags)
        except OSError as exc:
            if not follow and exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(path):
                raise LinkInTheWay(path) from None
            raise

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)

    def _at(self, name: str) -> tuple[str | Path, dict[str, int]]:
        """How to name ``name`` in a call: relative to the open directory, or (Windows) by path."""
        return (name, {"dir_fd": self.fd}) if self.fd is not None else (self.path / name, {})

    def __enter__(self) -> SafeDir:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def name_of(self, path: Path) -> str:
        """The name of ``path`` in this directory (every file streamdump writes sits directly in it)."""
        if path.parent != self.path:
            raise ValueError(f"{path} is not in {self.path}")
        return path.name

    def _lstat(self, name: str) -> os.stat_result | None:
        where, at = self._at(name)
        try:
            return os.stat(where, follow_symlinks=False, **at)
        except FileNotFoundError:
            return None

    def open(self, name: str, flags: int, *, single: bool = False) -> int:
        """``os.open`` of ``name`` without following a link; with ``single``, refuse anything but a
        regular file with no other name (a planted hard link is another file's second name)."""
        where, at = self._at(name)
        try:
            fd = os.open(where, flags | _NOFOLLOW | _CLOEXEC, 0o644, **at)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EMLINK):  # Linux, and the BSDs' answer to O_NOFOLLOW
                raise LinkInTheWay(self.path / name) from None
            raise
        if single:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
                os.close(fd)
                what = "a file with another name (a hard link)" if stat.S_ISREG(info.st_mode) else "a special file"
                raise LinkInTheWay(self.path / name, what)
        return fd

    def create(self, name: str) -> int:
        """Create ``name`` fresh (``O_EXCL``), for writing. A stale regular file of that name (an
        earlier attempt's, a killed run's) is removed first; a link raises LinkInTheWay."""
        where, at = self._at(name)
        for _ in range(3):
            try:
                return os.open(where, _FRESH, 0o644, **at)
            except FileExistsError:
                info = self._lstat(name)
                if info is not None and not stat.S_ISREG(info.st_mode):
                    what = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "a special file"
                    raise LinkInTheWay(self.path / name, what) from None
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(where, **at)  # removes the name only, whatever it is
        raise FileExistsError(errno.EEXIST, "keeps being recreated by someone else", str(self.path / name))

    def create_temporary(self, name: str) -> tuple[str, int]:
        """A fresh file beside ``name`` whose name nobody can guess in advance: (its name, fd)."""
        while True:
            temporary = f".{name}.{secrets.token_hex(6)}.tmp"
            where, at = self._at(temporary)
            try:
                return temporary, os.open(where, _FRESH, 0o644, **at)
            except FileExistsError:
                continue

    def rename_own(self, fd: int, source: str, target: str) -> None:
        """Rename our open file ``source`` to ``target`` (a link at ``target`` is replaced, not
        followed), after checking that ``source`` is still the file ``fd`` holds."""
        mine = os.fstat(fd)
        there = self._lstat(source)
        if there is None or (there.st_dev, there.st_ino) != (mine.st_dev, mine.st_ino):
            raise LinkInTheWay(self.path / source, "another file put in place of ours")
        if self.fd is None:  # Windows
            os.replace(self.path / source, self.path / target)
        else:
            os.replace(source, target, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def remove(self, name: str) -> None:
        """Remove ``name`` if it is there (a link is removed itself, never its target)."""
        where, at = self._at(name)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(where, **at)


def read_text(path: Path) -> str | None:
    """A file's text (invalid UTF-8 replaced), not through a link: ``None`` when it is missing, a
    directory or a link (one planted in a shared out-dir could point at anything)."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
    except (FileNotFoundError, IsADirectoryError):
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):
            return None
        raise
    with open(fd, "rb") as handle:
        return handle.read().decode("utf-8", errors="replace")
