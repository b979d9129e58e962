"""The simulated Batch API's fault rules (``--batch-fault``), parsed. Pure.

expire[,after=K]   the batch expires: K lines answered, the rest batch_expired (error file)
fail               the batch fails validation
token-limit        the batch fails with token_limit_exceeded (the provider's queue is full)
upload-drop        store the uploaded file, then close the connection without answering
create-drop        create the batch, then close the connection without answering
upload-hang, create-hang   the same, but hold the connection open, never answering
status=CODE        answer every files and batches call with CODE (401, 503, ...) instead

keys: match=TEXT (a batch, or an upload, with a line containing TEXT), times=K (the first K hits)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

UPLOAD_FAULTS = frozenset({"upload-drop", "upload-hang"})
CREATE_FAULTS = frozenset({"create-drop", "create-hang"})
CALL_FAULTS = frozenset({"status"})
BATCH_FAULT_KINDS = frozenset({"expire", "fail", "token-limit", "status"}) | UPLOAD_FAULTS | CREATE_FAULTS


@dataclass(frozen=True, slots=True)
class BatchFault:
    kind: str
    match: str | None = None
    times: int | None = None
    after: int = 0
    status: int = 500


def parse_batch_fault(spec: str) -> BatchFault:
    """Parse one ``--batch-fault`` rule. Raises ValueError with a readable message."""
    head, *rest = [part.strip() for part in spec.split(",")]
    kind, _, value = head.lower().partition("=")
    if kind not in BATCH_FAULT_KINDS:
        raise ValueError(f"unknown batch fault {kind!r}; expected one of {', '.join(sorted(BATCH_FAULT_KINDS))}")
    options: dict[str, Any] = {}
    if kind == "status":
        if not value.isdigit() or not 400 <= int(value) <= 599:
            raise ValueError("batch fault status needs an HTTP error code, as in status=503")
        options["status"] = int(value)
    for item in rest:
        key, sep, raw = item.partition("=")
        if not sep or key not in ("match", "times", "after"):
            raise ValueError(f"batch fault option {item!r}: expected match=TEXT, times=K or after=K")
        try:
            options[key] = raw if key == "match" else int(raw)
        except ValueError:
            raise ValueError(f"batch fault option {key}: {raw!r} is not a whole number") from None
    return BatchFault(kind, **options)
