"""Which input file each request goes into, within the Batch API's limits. Pure; no I/O.

A file holds requests to one endpoint and one model, at most 50,000 of them and 200 MB.  Requests
are placed in the order they come; a group's file is closed when the next request would not fit,
and a new one is started.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1000 * 1000  # the API says 200 MB; counting in 10^6 keeps us under either reading

Group = tuple[str, str]  # (endpoint, model)


class LineTooLargeError(ValueError):
    """One request alone is larger than a file may be."""


@dataclass(frozen=True, slots=True)
class Limits:
    requests: int = MAX_REQUESTS
    bytes: int = MAX_BYTES

    def __post_init__(self) -> None:
        if not 1 <= self.requests <= MAX_REQUESTS:
            raise ValueError(f"requests per file must be 1 to {MAX_REQUESTS:,}, not {self.requests}")
        if not 1 <= self.bytes <= MAX_BYTES:
            raise ValueError(f"bytes per file must be 1 to {MAX_BYTES:,}, not {self.bytes}")


class Splitter:
    """Place requests one by one: ``place`` says whether a request starts a new file of its group."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._open: dict[Group, tuple[int, int]] = {}  # group -> (requests, bytes) of its open file

    def place(self, group: Group, size: int) -> bool:
        """True when this request goes into a new file (the group's first, or its last one is full)."""
        if size > self.limits.bytes:
            raise LineTooLargeError(f"a request of {size:,} bytes is larger than a batch file may be")
        count, used = self._open.get(group, (0, 0))
        fresh = count == 0 or count + 1 > self.limits.requests or used + size > self.limits.bytes
        if fresh:
            count, used = 0, 0
        self._open[group] = (count + 1, used + size)
        return fresh
