"""Prompts file -> jobs.  ``parse_line`` is pure; ``scan`` and ``iter_jobs`` stream the file.

A run reads its input twice: ``scan`` checks every line before anything is sent (and learns which
ids collide when case is ignored), then ``iter_jobs`` reads it again lazily to feed the workers.
Memory stays flat in the number of lines apart from one small integer per id, which duplicate
detection needs.  Standard input is copied to a temporary file by ``scan`` so it can be read twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO

from .errors import InputError
from .naming import fold_key, hashed_name, is_plain, safe_name

BATCH_URL = "/v1/chat/completions"
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
# Parameters streamdump sets itself; a line may not set them.
RESERVED_PARAMS = frozenset({"messages", "model", "stream", "stream_options"})
MAX_PROBLEMS = 50


class LineError(ValueError):
    """What is wrong with one line (the caller adds FILE:LINE)."""


@dataclass(frozen=True, slots=True)
class Defaults:
    """What the command line supplies to lines that do not say."""

    model: str
    system: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    line: int
    model: str
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    name: str = ""
    request_hash: str = ""

    def body(self) -> dict[str, Any]:
        """The chat-completions request body, without the streaming options."""
        return {**self.params, "model": self.model, "messages": self.messages}


def request_hash(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    """A stable hash of everything that decides the response: model, messages, parameters."""
    canonical = json.dumps(
        {"model": model, "messages": messages, "params": params},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def default_id(line: int) -> str:
    return f"line-{line:06d}"


def _check_messages(messages: object) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise LineError('"messages" must be a non-empty list')
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise LineError(f"{where} must be an object")
        role = message.get("role")
        if role not in ROLES:
            raise LineError(f"{where}.role must be one of {', '.join(sorted(ROLES))}, not {role!r}")
        content = message.get("content")
        if content is None and role not in ("assistant", "tool", "function"):
            raise LineError(f'{where} has no "content"')
        if content is not None and not isinstance(content, (str, list)):
            raise LineError(f"{where}.content must be a string or a list of parts")
    return messages


def _check_params(params: object, where: str) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise LineError(f'"{where}" must be an object')
    reserved = sorted(RESERVED_PARAMS & params.keys())
    if reserved:
        raise LineError(f'"{where}" may not set {", ".join(reserved)}')
    return params


def _check_id(value: object, key: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise LineError(f'"{key}" must be a string')
    text = str(value)
    if not text:
        raise LineError(f'"{key}" is empty')
    return text


def parse_line(text: str, line: int, defaults: Defaults, *, with_hash: bool = True) -> Job:
    """Parse one non-blank line into a Job (without its file name). Raises LineError.

    ``with_hash=False`` leaves ``request_hash`` empty: checking the input does not need it, and it is
    a third of a line's cost (a resumed run of 100,000 lines reads them twice).
    """
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LineError(f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise LineError(f"expected a JSON object, got {type(obj).__name__}")

    if "custom_id" in obj or "body" in obj or "url" in obj:
        item_id = _check_id(obj.get("custom_id"), "custom_id")
        if obj.get("method", "POST") != "POST":
            raise LineError(f'Batch API "method" must be POST, not {obj.get("method")!r}')
        if obj.get("url") != BATCH_URL:
            raise LineError(f'unknown Batch API "url" {obj.get("url")!r}: only {BATCH_URL} is supported')
        body = obj.get("body")
        if not isinstance(body, dict):
            raise LineError('Batch API "body" must be an object')
        messages = _check_messages(body.get("messages"))
        model = body.get("model", defaults.model)
        params = {k: v for k, v in body.items() if k not in RESERVED_PARAMS}
    else:
        item_id = _check_id(obj.get("id"), "id")
        if "prompt" in obj and "messages" in obj:
            raise LineError('a line has "prompt" or "messages", not both')
        if "prompt" in obj:
            prompt = obj["prompt"]
            if not isinstance(prompt, str) or not prompt:
                raise LineError('"prompt" must be a non-empty string')
            system = obj.get("system", defaults.system)
            if system is not None and not isinstance(system, str):
                raise LineError('"system" must be a string')
            messages = [{"role": "user", "content": prompt}]
            if system:
                messages.insert(0, {"role": "system", "content": system})
        elif "messages" in obj:
            messages = _check_messages(obj["messages"])
            if defaults.system and not any(m["role"] in ("system", "developer") for m in messages):
                messages = [{"role": "system", "content": defaults.system}, *messages]
        else:
            raise LineError('a line needs "prompt" or "messages"')
        model = obj.get("model", defaults.model)
        params = _check_params(obj.get("params", {}), "params")

    if not isinstance(model, str) or not model:
        raise LineError('"model" must be a non-empty string')
    params = {**defaults.params, **params}
    return Job(
        id=item_id or default_id(line),
        line=line,
        model=model,
        messages=messages,
        params=params,
        request_hash=request_hash(model, messages, params) if with_hash else "",
    )


def _digest(text: str) -> int:
    raw = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(raw, "little")


@dataclass(frozen=True, slots=True)
class InputPlan:
    """What ``scan`` learned: where to read the lines again, how many jobs, which ids collide."""

    path: str
    display: str
    count: int
    collided: frozenset[int]
    temporary: bool = False

    def name_for(self, item_id: str) -> str:
        key = fold_key(item_id)
        return safe_name(item_id, case_collision=key is not None and _digest(key) in self.collided)

    def discard(self) -> None:
        if self.temporary:
            os.unlink(self.path)


def _lines(stream: IO[bytes], copy: IO[bytes] | None = None) -> Iterator[tuple[int, str | None]]:
    """(line number, text) for each non-blank line; text None when it is not UTF-8.

    Every raw line, blank or not, is also written to ``copy`` when one is given.
    """
    for number, raw in enumerate(stream, start=1):
        if copy is not None:
            copy.write(raw)
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if not raw.strip():
            continue
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError:
            yield number, None


def _open_source(path: str) -> tuple[BinaryIO, str, bool]:
    """Open the prompts file; standard input is copied to a temporary file as it is read."""
    if path == "-":
        return sys.stdin.buffer, "<stdin>", True
    return open(path, "rb"), path, False


def scan(path: str, defaults: Defaults) -> InputPlan:
    """Check every line of the prompts file. Raises InputError listing every problem found."""
    problems: list[str] = []
    more = 0
    first_line: dict[int, int] = {}  # id digest -> line it first appeared on
    fold_owner: dict[int, int] = {}  # case-folded plain name digest -> id digest
    collided: set[int] = set()
    hashed_seen: dict[int, int] = {}  # case-folded hashed name digest -> line
    count = 0
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

    try:
        for number, text in _lines(source, copy):
            if text is None:
                problem(number, "not valid UTF-8")
                continue
            try:
                job = parse_line(text, number, defaults, with_hash=False)
            except LineError as exc:
                problem(number, str(exc))
                continue
            count += 1
            id_digest = _digest(job.id)
            if id_digest in first_line:
                problem(number, f"duplicate id {job.id!r} (first on line {first_line[id_digest]})")
                continue
            first_line[id_digest] = number
            key = fold_key(job.id)
            if key is not None:
                key_digest = _digest(key)
                owner = fold_owner.setdefault(key_digest, id_digest)
                if owner != id_digest:
                    collided.add(key_digest)
            else:
                name_digest = _digest(hashed_name(job.id).casefold())
                if name_digest in hashed_seen:
                    problem(
                        number,
                        f"id {job.id!r} maps to the same file as the id on line {hashed_seen[name_digest]}",
                    )
                hashed_seen[name_digest] = number
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
    if copy is not None:
        return InputPlan(copy.name, display, count, frozenset(collided), temporary=True)
    return InputPlan(path, display, count, frozenset(collided))


def iter_jobs(plan: InputPlan, defaults: Defaults) -> Iterator[Job]:
    """Read the (already checked) input again, lazily, yielding each Job with its file name."""
    with open(plan.path, "rb") as source:
        for number, text in _lines(source):
            if text is None:  # scan() has already refused such a file
                continue
            job = parse_line(text, number, defaults)
            yield _with_name(job, plan.name_for(job.id))


def _with_name(job: Job, name: str) -> Job:
    return Job(job.id, job.line, job.model, job.messages, job.params, name, job.request_hash)


__all__ = ["Defaults", "InputPlan", "Job", "LineError", "is_plain", "iter_jobs", "parse_line", "scan"]
