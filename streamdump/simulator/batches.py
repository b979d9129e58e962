"""The simulated OpenAI Batch API: ``/v1/files`` and ``/v1/batches``.

- ``POST /v1/files`` (multipart: ``purpose``, ``file``), ``GET /v1/files`` (``purpose``, ``limit``,
  ``after``, ``order``), ``GET /v1/files/{id}``, ``GET /v1/files/{id}/content``;
- ``POST /v1/batches``, ``GET /v1/batches`` (``limit``, ``after``; newest first, with metadata),
  ``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``.

A batch is validated when it is created (every line JSON, ``POST`` to the batch's endpoint, a
unique ``custom_id``, one model; at most 50,000 lines): a bad file fails the batch, as OpenAI's
``validating`` step does.  It then is ``in_progress`` for ``processing_seconds`` (settable, also
while the server runs) and completes on the first look after that: each line is answered with the
body its endpoint's format answers a non-streamed request with (``chat``, ``responses``,
``completions``: the texts the streams give), answers in the output file, failed lines
in the error file.  Time moves only when a client looks: there are no background tasks.

Faults: the stream rules (``--fault``) apply to each line as to a request (``status=CODE`` fails
the line with that status, ``refuse`` and ``content-filter`` change its answer, ``single-choice``
drops ``n``); the batch rules (``--batch-fault``, see ``batch_faults``) apply to whole batches,
to the two writes (upload, create) and to every call.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import hashlib
import itertools
import json
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .batch_faults import BATCH_FAULT_KINDS, CALL_FAULTS, CREATE_FAULTS, UPLOAD_FAULTS, BatchFault
from .formats import Format, Generation
from .http import REASONS, error_body, json_response, model_not_found
from .script import pick_fault

if TYPE_CHECKING:
    from .state import SimConfig

MAX_REQUESTS = 50_000
# Stream faults that change what a line answers (the others break a transport a batch does not have).
ANSWER_FAULTS = frozenset({"refuse", "content-filter", "single-choice", "failed"})
BATCH_ROUTES = (
    ("POST", "/v1/files"),
    ("GET", "/v1/files"),
    ("GET", "/v1/files/{file_id}"),
    ("GET", "/v1/files/{file_id}/content"),
    ("POST", "/v1/batches"),
    ("GET", "/v1/batches"),
    ("GET", "/v1/batches/{batch_id}"),
    ("POST", "/v1/batches/{batch_id}/cancel"),
)
WINDOW = 24 * 3600
HANG = 3600.0  # seconds a hanging answer waits (the simulator's stop ends it sooner)
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_ROUTE = re.compile(r"(?:/v1)?/(files|batches)(?:/([^/]+))?(?:/(content|cancel))?/?")


@dataclass(slots=True)
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


@dataclass(slots=True)
class SimBatch:
    id: str
    endpoint: str
    input_file_id: str
    metadata: dict[str, str] | None
    created_at: float
    lines: list[dict[str, Any]]
    model: str | None
    status: str = "validating"
    errors: list[dict[str, Any]] = field(default_factory=list)
    fault: BatchFault | None = None
    times: dict[str, float] = field(default_factory=dict)  # "in_progress_at", "completed_at", ...
    output_file_id: str | None = None
    error_file_id: str | None = None
    completed: int = 0
    failed: int = 0

    def to_json(self) -> dict[str, Any]:
        stamps = ("in_progress_at", "finalizing_at", "completed_at", "failed_at", "expired_at", "cancelling_at")
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "model": self.model,
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "input_file_id": self.input_file_id,
            "completion_window": "24h",
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": int(self.created_at),
            "expires_at": int(self.created_at) + WINDOW,
            **{stamp: int(self.times[stamp]) if stamp in self.times else None for stamp in (*stamps, "cancelled_at")},
            "request_counts": {"total": len(self.lines), "completed": self.completed, "failed": self.failed},
            "metadata": self.metadata,
        }


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class BatchApi:
    """The files and batches of one simulator, kept in memory."""

    def __init__(
        self, config: SimConfig, formats: Mapping[str, Format], *, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.formats = formats  # endpoint -> the wire format that answers its lines
        self.processing_seconds = config.batch_seconds  # settable while the server runs
        self.faults = config.batch_faults
        self.clock = clock
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, SimBatch] = {}
        self._ids = itertools.count(1)
        self._hits: dict[int, int] = {}  # batch fault rule (its index) -> how often it applied
        self._seen: dict[str, int] = {}  # prompt -> lines answered with it, for the line faults' `times`
        self._lines = itertools.count(1)  # lines answered, for their ids

    @staticmethod
    def handles(path: str) -> bool:
        return _ROUTE.fullmatch(path.split("?", 1)[0]) is not None

    # -- HTTP -----------------------------------------------------------------------------------
    async def serve(
        self, writer: asyncio.StreamWriter, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> bool:
        """Answer one request (``target``: path and query); False when the connection is to close."""
        status, payload, then = self.answer(method, target, headers, raw)
        if then is not None:
            if then == "hang":
                await asyncio.sleep(HANG)
            writer.transport.abort()
            return False
        request_id = {"x-request-id": f"req_simbatch_{next(self._ids)}"}
        if isinstance(payload, bytes):  # a file's content
            head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}", "Content-Type: application/octet-stream"]
            head += [f"Content-Length: {len(payload)}", f"x-request-id: {request_id['x-request-id']}"]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        else:
            writer.write(json_response(status, payload, request_id))
        await writer.drain()
        return True

    def answer(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any, str | None]:
        """(status, JSON payload or raw bytes, and instead of answering: None, "drop" or "hang")."""
        path, _, query_text = target.partition("?")
        query = dict(urllib.parse.parse_qsl(query_text))
        match = _ROUTE.fullmatch(path)
        assert match is not None
        kind, ident, action = match.groups()
        fault = self._fault_hit(CALL_FAULTS, [raw])
        if fault is not None:
            error = {"message": f"simulated {fault.status}", "type": "server_error", "code": None}
            return fault.status, {"error": error}, None
        try:
            if kind == "files":
                return self._files(method, ident, action, query, headers, raw)
            return self._batches(method, ident, action, query, raw)
        except _Refused as exc:
            return exc.status, {"error": {"message": str(exc), "type": "invalid_request_error", "code": None}}, None

    def _files(
        self,
        method: str,
        ident: str | None,
        action: str | None,
        query: dict[str, str],
        headers: dict[str, str],
        raw: bytes,
    ) -> tuple[int, Any, str | None]:
        if method == "POST" and ident is None:
            stored = self._upload(headers.get("content-type", ""), raw)
            return 200, stored.to_json(), _then(self._fault_hit(UPLOAD_FAULTS, [stored.data]))
        if method == "GET" and ident is None:
            files = [f for f in self.files.values() if query.get("purpose") in (None, f.purpose)]
            return 200, _page([f.to_json() for f in files], query, default_limit=10_000), None
        found = self.files.get(ident or "")
        if found is None or method != "GET":
            raise _Refused(404, f"No such File object: {ident}")
        return 200, (found.data if action == "content" else found.to_json()), None

    def _batches(
        self, method: str, ident: str | None, action: str | None, query: dict[str, str], raw: bytes
    ) -> tuple[int, Any, str | None]:
        if method == "POST" and ident is None:
            batch = self._create(raw)
            return (
                200,
                batch.to_json(),
                _then(batch.fault if batch.fault is not None and batch.fault.kind in CREATE_FAULTS else None),
            )
        if method == "GET" and ident is None:
            for batch in self.batches.values():
                self.advance(batch)
            newest_first = [b.to_json() for b in reversed(self.batches.values())]
            return 200, _page(newest_first, {**query, "order": "asc"}, default_limit=20, most=100), None
        found = self.batches.get(ident or "")
        if found is None:
            raise _Refused(404, f"No batch found with id '{ident}'.")
        if method == "POST" and action == "cancel":
            self.advance(found)
            if found.status in ("validating", "in_progress", "finalizing"):
                found.status = "cancelling"
                found.times["cancelling_at"] = self.clock()
            return 200, found.to_json(), None
        if method == "GET" and action is None:
            self.advance(found)
            return 200, found.to_json(), None
        raise _Refused(404, f"no route {method} batches/{ident}/{action}")

    # -- files ----------------------------------------------------------------------------------
    def _upload(self, content_type: str, raw: bytes) -> StoredFile:
        head = f"Content-Type: {content_type}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
        if not message.is_multipart():
            raise _Refused(400, "expected a multipart/form-data upload")
        fields: dict[str, tuple[str | None, bytes]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields[name] = (part.get_filename(), payload)
        purpose = fields.get("purpose", (None, b""))[1].decode()
        if "file" not in fields:
            raise _Refused(400, "Missing required parameter: 'file'.")
        if purpose != "batch":
            raise _Refused(400, f"Invalid purpose {purpose!r}: this simulator takes purpose 'batch' uploads")
        filename, data = fields["file"]
        return self._store(filename or "upload.jsonl", "batch", data)

    def _store(self, filename: str, purpose: str, data: bytes) -> StoredFile:
        ident = f"file-sim{next(self._ids):06d}{hashlib.sha256(data).hexdigest()[:12]}"
        stored = StoredFile(ident, filename, purpose, data, int(self.clock()))
        self.files[ident] = stored
        return stored

    # -- batches --------------------------------------------------------------------------------
    def _create(self, raw: bytes) -> SimBatch:
        try:
            request = json.loads(raw)
        except ValueError:
            raise _Refused(400, "body is not JSON") from None
        if not isinstance(request, dict):
            raise _Refused(400, "body is not a JSON object")
        endpoint = request.get("endpoint")
        if not isinstance(endpoint, str) or endpoint not in self.formats:
            raise _Refused(400, f"Invalid endpoint {endpoint!r}: the simulator serves {', '.join(self.formats)}")
        if request.get("completion_window") != "24h":
            raise _Refused(400, "completion_window must be '24h'")
        metadata = request.get("metadata")
        if metadata is not None and (not isinstance(metadata, dict) or len(metadata) > 16):
            raise _Refused(400, "metadata must be an object of at most 16 pairs")
        stored = self.files.get(str(request.get("input_file_id")))
        if stored is None or stored.purpose != "batch":
            raise _Refused(400, f"Invalid input_file_id {request.get('input_file_id')!r}")
        lines, errors, model = _validate(stored.data, endpoint)
        ident = f"batch_sim{next(self._ids):06d}"
        batch = SimBatch(ident, endpoint, stored.id, metadata, self.clock(), lines, model, errors=errors)
        batch.fault = self._fault_hit(BATCH_FAULT_KINDS - UPLOAD_FAULTS - CALL_FAULTS, [stored.data])
        self.batches[ident] = batch
        return batch

    def _fault_hit(self, kinds: frozenset[str], texts: list[bytes]) -> BatchFault | None:
        """The first batch rule of one of ``kinds`` that hits a file holding ``texts``."""
        for number, fault in enumerate(self.faults):
            if fault.kind not in kinds:
                continue
            if fault.match is not None and not any(fault.match.encode() in text for text in texts):
                continue
            hits = self._hits.get(number, 0)
            if fault.times is not None and hits >= fault.times:
                continue
            self._hits[number] = hits + 1
            return fault
        return None

    def advance(self, batch: SimBatch) -> None:
        """Bring a batch to where the clock says it is."""
        if batch.status in TERMINAL:
            return
        now = self.clock()
        fault = batch.fault.kind if batch.fault is not None else None
        if batch.errors or fault in ("fail", "token-limit"):
            if fault == "token-limit":
                message = f"Enqueued token limit reached for {batch.model} in organization org-sim."
                batch.errors = [{"code": "token_limit_exceeded", "message": message, "param": None, "line": None}]
            elif not batch.errors:
                batch.errors = [
                    {"code": "invalid_request", "message": "simulated failure", "param": None, "line": None}
                ]
            batch.status = "failed"
            batch.times["failed_at"] = now
            return
        batch.times.setdefault("in_progress_at", batch.created_at)
        if batch.status == "cancelling":  # the lines the time so far has answered, as a real batch
            share = (now - batch.created_at) / self.processing_seconds if self.processing_seconds > 0 else 1.0
            self._finish(batch, "cancelled", done=int(len(batch.lines) * min(share, 1.0)))
            return
        if now - batch.created_at < self.processing_seconds:
            batch.status = "in_progress"
            return
        if fault == "expire":
            self._finish(batch, "expired", done=batch.fault.after if batch.fault is not None else 0)
        else:
            self._finish(batch, "completed", done=len(batch.lines))

    def _finish(self, batch: SimBatch, status: str, *, done: int) -> None:
        now = self.clock()
        outputs: list[bytes] = []
        errors: list[bytes] = []
        for number, line in enumerate(batch.lines):
            if number < done:
                result, ok = self._answer_line(batch, number, line)
                (outputs if ok else errors).append(result)
                batch.completed += ok
                batch.failed += not ok
            elif status == "expired":
                message = "This request could not be executed before the completion window expired."
                error = {"code": "batch_expired", "message": message}
                errors.append(
                    _jsonl(
                        {
                            "id": _line_id(batch, number),
                            "custom_id": line["custom_id"],
                            "response": None,
                            "error": error,
                        }
                    )
                )
                batch.failed += 1
        if outputs:
            batch.output_file_id = self._store(f"{batch.id}_output.jsonl", "batch_output", b"".join(outputs)).id
        if errors:
            batch.error_file_id = self._store(f"{batch.id}_error.jsonl", "batch_output", b"".join(errors)).id
        batch.times["finalizing_at"] = now
        batch.times[f"{status}_at"] = now
        batch.status = status

    def _answer_line(self, batch: SimBatch, number: int, line: dict[str, Any]) -> tuple[bytes, bool]:
        """One result line, and whether it succeeded: the format's own non-streamed answer."""
        body = line["body"]
        wire = self.formats[batch.endpoint]
        prompt = wire.prompt(body)
        nth = self._seen.get(prompt, 0) + 1
        self._seen[prompt] = nth
        fault = pick_fault(list(self.config.faults), prompt, nth)
        request_id = f"req_simbatch_{batch.id[9:]}_{number}"
        result: dict[str, Any] = {"id": _line_id(batch, number), "custom_id": line["custom_id"], "error": None}

        def failed(status: int, error: dict[str, Any]) -> tuple[bytes, bool]:
            result["response"] = {"status_code": status, "request_id": request_id, "body": error}
            return _jsonl(result), False

        if fault is not None and fault.kind == "status":
            status = int(fault.value or 500)
            return failed(status, error_body(f"simulated {status}", code=fault.code or status))
        if self.config.models and body.get("model") not in self.config.models:
            return failed(404, model_not_found(body.get("model")))
        problem = wire.check(body)
        if problem is not None:
            return failed(400, error_body(problem.message, param=problem.param, code=problem.code))
        if fault is not None and fault.kind not in ANSWER_FAULTS:
            fault = None  # the transport's faults (drop, stall, ...) have no place in a batch
        generation = Generation(body, prompt, fault, self.config, next(self._lines), int(self.clock()))
        result["response"] = {"status_code": 200, "request_id": request_id, "body": wire.complete(generation)}
        return _jsonl(result), True


def _then(fault: BatchFault | None) -> str | None:
    """What a write fault does instead of answering: "drop" or "hang"."""
    return None if fault is None else fault.kind.rsplit("-", 1)[1]


def _line_id(batch: SimBatch, number: int) -> str:
    return f"batch_req_{hashlib.sha256(f'{batch.id}/{number}'.encode()).hexdigest()[:24]}"


def _jsonl(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode() + b"\n"


def _validate(data: bytes, endpoint: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
    """(the lines, what is wrong with them as OpenAI's validation says it, the one model)."""
    lines: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    models: set[str] = set()

    def error(code: str, message: str, number: int | None) -> None:
        errors.append({"code": code, "message": message, "param": None, "line": number})

    for number, text in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except ValueError:
            error("invalid_json_line", "This line is not parseable as valid JSON.", number)
            continue
        if not isinstance(line, dict) or not isinstance(line.get("body"), dict):
            error("invalid_request", "A line must be an object with a body.", number)
            continue
        if line.get("method") != "POST" or line.get("url") != endpoint:
            error("mismatched_endpoint", f"The url must be {endpoint!r} for this batch.", number)
        custom_id = line.get("custom_id")
        if not isinstance(custom_id, str) or custom_id in seen:
            error("duplicate_custom_id", "custom_id must be a string, unique in the file.", number)
        seen.add(str(custom_id))
        models.add(str(line["body"].get("model")))
        lines.append(line)
    if len(models) > 1:
        error("mismatched_model", f"A batch takes one model; this file has {len(models)}.", None)
    if len(lines) > MAX_REQUESTS:
        error("too_many_requests", f"A batch takes at most {MAX_REQUESTS} requests.", None)
    if not lines and not errors:
        error("empty_file", "The input file has no requests.", None)
    return lines, errors, next(iter(models)) if len(models) == 1 else None


def _page(
    items: list[dict[str, Any]], query: dict[str, str], *, default_limit: int, most: int = 10_000
) -> dict[str, Any]:
    """A cursor page: ``items`` in ``order`` (``desc``: reversed), from after ``after``, ``limit`` long."""
    if query.get("order", "desc") == "desc":
        items = items[::-1]
    after = query.get("after")
    if after is not None:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    try:
        limit = max(1, min(int(query.get("limit", default_limit)), most))
    except ValueError:
        limit = default_limit
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }
