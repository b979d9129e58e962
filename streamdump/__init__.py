"""streamdump: bulk LLM generation from the command line, one streamed file per prompt."""

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
from .jobs import Defaults, Job

__version__ = "0.1.0"

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
