"""HTTP/1.1 as the simulators speak it: reading a request, writing a JSON answer, OpenAI's error bodies."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

MAX_BODY = 16 * 1024 * 1024
REASONS = {
    200: "OK",
    307: "Temporary Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class TooLarge(Exception):
    """A request body over MAX_BODY: answered with 413, then the connection closes."""


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str  # without the query
    headers: dict[str, str]  # lower-case names; never the Authorization header
    raw: bytes
    at: float  # time.monotonic() when it had arrived
    wall: float  # time.time() then
    query: str = ""  # after the "?" (the Batch API's lists page with it)
    authorization: str = ""  # only for the echo-auth fault to echo; never recorded


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """The next request on a connection, or None when the client closed it between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, target, _ = request_line.split(" ", 2)
    headers = {}
    for line in header_lines:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    authorization = headers.pop("authorization", "")  # never in the headers recorded
    length = int(headers.get("content-length") or 0)
    if length > MAX_BODY:
        raise TooLarge
    raw = await reader.readexactly(length) if length else b""
    path, _, query = target.partition("?")
    return Request(method, path, headers, raw, time.monotonic(), time.time(), query, authorization)


def json_response(status: int, payload: object, headers: dict[str, str] | None = None) -> bytes:
    """A whole HTTP/1.1 response with a JSON body."""
    data = json.dumps(payload).encode()
    lines = [
        f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
    ]
    lines += [f"{key}: {value}" for key, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def error_body(
    message: str, *, type: str = "invalid_request_error", code: str | int | None = None, param: str | None = None
) -> dict[str, object]:
    """An error as OpenAI's API words it."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def invalid_url(method: str, path: str) -> dict[str, object]:
    """OpenAI's 404 for a path it does not serve."""
    return error_body(f"Invalid URL ({method} {path})")


def invalid_method(method: str, path: str) -> dict[str, object]:
    """OpenAI's answer to a path it serves, asked with another method (sent with 405)."""
    return error_body(f"Invalid method for URL ({method} {path})")


def model_not_found(model: object) -> dict[str, object]:
    """OpenAI's 404 for a model it does not serve."""
    message = f"The model `{model}` does not exist or you do not have access to it."
    return error_body(message, code="model_not_found")


def invalid_json() -> dict[str, object]:
    return error_body("We could not parse the JSON body of your request: it is not a JSON object.")


def multibyte_cut(data: bytes) -> int:
    """An offset inside the first multi-byte UTF-8 character of ``data``, or 0 if there is none."""
    for index, byte in enumerate(data):
        if byte >= 0xC0:
            return index + 1
    return 0
