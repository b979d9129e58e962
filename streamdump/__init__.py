"""streamdump: bulk LLM generation from the command line, one streamed file per prompt."""

from typing import TYPE_CHECKING, Any

from .errors import (
    AttemptError,
    DiskError,
    FatalRequestError,
    InputError,
    LockedError,
    OutputDirError,
    RetryableError,
    SetupError,
    StreamdumpError,
)

if TYPE_CHECKING:
    from .jobs import Defaults, Job

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``Defaults`` and ``Job`` load jobs (hashlib, tempfile, ...) on first use, so ``--help`` stays fast."""
    if name in ("Defaults", "Job"):
        from . import jobs

        return getattr(jobs, name)
    raise AttributeError(f"module 'streamdump' has no attribute {name!r}")


__all__ = [
    "AttemptError",
    "Defaults",
    "DiskError",
    "FatalRequestError",
    "InputError",
    "Job",
    "LockedError",
    "OutputDirError",
    "RetryableError",
    "SetupError",
    "StreamdumpError",
    "__version__",
]
