"""The errors streamdump raises, drawn as a tree::

    StreamdumpError
    ├── NothingToDo           the input holds no prompts: nothing sent, nothing written (exit 0)
    ├── SetupError            the run cannot start; nothing was sent (exit 2)
    │   ├── InputError        one or more FILE:LINE problems in the prompts file (each a LineError)
    │   ├── OutputDirError    the out-dir cannot be created or written
    │   ├── LockedError       another run is writing the same files in the out-dir
    │   └── SchemaFileError   the --json-schema file is not a JSON Schema (Draft 2020-12)
    ├── DiskError             writing an item's files failed mid-run (disk full, I/O error)
    └── AttemptError          one attempt at one item failed; carries status, retry_after, cause
        ├── RetryableError    408, 409, 429, 5xx, connection, timeout, and the stream faults below
        │   ├── StallError            no data chunk for --idle-timeout seconds
        │   ├── AttemptTimeoutError   the attempt ran past --timeout seconds
        │   ├── StreamEventError      the server sent an SSE error event mid-stream (a transient code)
        │   ├── MalformedChunkError   a data line that is not JSON
        │   ├── OversizedEventError   an SSE line or event past MAX_EVENT_BYTES (memory stays bounded)
        │   └── IncompleteStreamError the stream ended without a finish_reason
        ├── PlantedLinkError  a link planted where one of the item's files belongs: never retried
        ├── FatalRequestError 400, 401, 403, 404, 422 and other 4xx: never retried
        │   ├── MissingChoicesError  the stream finished without some of the n choices asked for
        │   └── RequestFaultError    the stream failed with a code that blames the request
        ├── InvalidOutputError  a complete answer is not valid against its schema: redone up to
        │                       --invalid-retries times, apart from the retries above
        └── CostCapError      a retry no longer fits within --max-cost

    LineError (a ValueError)  what is wrong with one input line; the caller adds FILE:LINE

Input errors are never retried.  An item whose attempts are used up is recorded as failed with the
last ``AttemptError`` and every attempt's summary; the run goes on, unless the error says every
other request would fail the same way: a 401/403 (``stops_run``), or a wrong endpoint on the run's
first attempts (``firstcontact``).
"""

from __future__ import annotations


class LineError(ValueError):
    """What is wrong with one line of the prompts file (the caller adds FILE:LINE)."""


class StreamdumpError(Exception):
    """Root of every error streamdump raises on purpose."""


class NothingToDo(StreamdumpError):
    """The input holds no prompts: the run ends before it creates or writes anything."""


class SetupError(StreamdumpError):
    """The run cannot start; nothing has been sent."""


class InputError(SetupError):
    """Problems in the prompts file, each already formatted as ``FILE:LINE: what is wrong``."""

    def __init__(self, problems: list[str], *, more: int = 0) -> None:
        self.problems = problems
        self.more = more
        tail = f"\n... and {more} more problems" if more else ""
        super().__init__("\n".join(problems) + tail)


class OutputDirError(SetupError):
    """The out-dir cannot be created or written."""


class LockedError(SetupError):
    """Another run holds the out-dir's lock for the same items (the same shard, or an overlapping one)."""


class SchemaFileError(SetupError):
    """The ``--json-schema`` file cannot be read, is not JSON, or is not a Draft 2020-12 schema."""


class DiskError(StreamdumpError):
    """Writing an item's files failed during the run."""


class AttemptError(StreamdumpError):
    """One attempt at one item failed."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        kind: str | None = None,
        headers: dict[str, str] | None = None,
        body: object | None = None,
        code: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.url = url  # the URL the request went to, without credentials, when known
        self.code = code  # the server's error code, when a stream failed with one
        self.body = body  # the server's error object, when it answered with one
        self.headers = headers
        self.status = status
        self.retry_after = retry_after
        self.kind = kind or type(self).__name__

    @property
    def stops_run(self) -> bool:
        """A 401 or 403 would fail every other request the same way."""
        return self.status in (401, 403)


class RetryableError(AttemptError):
    retryable = True


class StallError(RetryableError):
    pass


class AttemptTimeoutError(RetryableError):
    pass


class StreamEventError(RetryableError):
    pass


class MalformedChunkError(RetryableError):
    pass


class OversizedEventError(RetryableError):
    pass


class IncompleteStreamError(RetryableError):
    pass


class PlantedLinkError(AttemptError):
    """A link (or another file) sits where one of the item's files belongs; its target is untouched."""


class FatalRequestError(AttemptError):
    pass


class MissingChoicesError(FatalRequestError):
    """The server finished the stream but never sent some choices: it does not support ``n``."""


class RequestFaultError(FatalRequestError):
    """The stream failed with an error code that says the request itself is at fault."""


class InvalidOutputError(AttemptError):
    """The stream completed, and an answer is not valid: not JSON, or not valid against its schema.

    Not retried by the retry policy: the item redoes it under its own count (``--invalid-retries``).
    """

    def __init__(self, message: str, *, choice: int = 0) -> None:
        super().__init__(message, kind="invalid_output")
        self.choice = choice


class CostCapError(AttemptError):
    """A retry that would no longer fit within ``--max-cost`` (the item fails; it is not retried)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind="cost_cap")
