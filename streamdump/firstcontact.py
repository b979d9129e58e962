"""The first attempts of a run tell a wrong endpoint from a bad moment.

When the first ``FIRST_CONTACT_ATTEMPTS`` attempts of a run, before any success, all fail to
connect (refused, DNS, TLS), or all get 404, 405 or a redirect, every other request would fail the
same way: the run stops, like it does for 401/403, with one message that names the URL tried, what
came back and the likely fix.  Any other outcome among them (a success, a 429, a 500, a stream cut
short) settles it: later failures are retried as usual.

Pure: fed each attempt's outcome, it answers with the message to stop with, or None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import _constants as C
from .errors import AttemptError

UNREACHABLE, WRONG_ROUTE = "unreachable", "wrong route"

_MODEL_UNKNOWN = re.compile(
    r"model\b[^.\n]{0,80}?(does not exist|doesn't exist|not found|not exist|unknown|not served|not available)"
    r"|(unknown|invalid|no such) model|model_not_found",
    re.IGNORECASE,
)
_DNS = re.compile(r"name or service not known|nodename nor servname|getaddrinfo|name resolution|no address", re.I)
_TLS = re.compile(r"ssl|tls|certificate", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Contact:
    """One failed attempt, as first contact sees it."""

    status: int | None  # the HTTP status, when the server answered with one
    kind: str  # the error's kind (``connection``, ``http_404``, ...)
    reached: bool  # the server answered at all (a status, or the stream's headers)
    message: str  # our error message (the server's own message for an HTTP error)
    body: object = None  # the server's error body
    location: str | None = None  # a redirect's Location header
    url: str | None = None  # where the request went, without credentials
    model: str | None = None

    @classmethod
    def of(cls, exc: AttemptError, *, answered: bool, model: str | None = None) -> Contact:
        """``answered``: the server sent the stream's headers before the attempt failed."""
        location = next((v for k, v in (exc.headers or {}).items() if k.lower() == "location"), None)
        return cls(
            status=exc.status,
            kind=exc.kind,
            reached=answered or exc.status is not None,
            message=str(exc),
            body=exc.body,
            location=location,
            url=exc.url,
            model=model,
        )


def classify(contact: Contact) -> str | None:
    """UNREACHABLE, WRONG_ROUTE, or None for a failure that says nothing about the endpoint."""
    if contact.status is None:
        return UNREACHABLE if not contact.reached and contact.kind == "connection" else None
    if contact.status in (404, 405) or 300 <= contact.status < 400:
        return WRONG_ROUTE
    return None


def model_unknown(contact: Contact) -> bool:
    """The server's error says the model is unknown (vLLM and OpenAI answer 404 for that)."""
    text = contact.message
    if isinstance(contact.body, dict):
        error = contact.body.get("error", contact.body)
        if isinstance(error, dict):
            text += " " + " ".join(str(error.get(key) or "") for key in ("message", "code", "type", "detail"))
    return bool(_MODEL_UNKNOWN.search(text))


class FirstContact:
    """Fed each attempt's outcome (``succeeded``/``failed``), says when the run should stop."""

    def __init__(self, *, attempts: int = C.FIRST_CONTACT_ATTEMPTS) -> None:
        self.attempts = attempts
        self._seen: list[Contact] = []
        self.settled = False  # decided: the endpoint works, or the run was told to stop

    def succeeded(self) -> None:
        self.settled = True

    def failed(self, contact: Contact) -> str | None:
        """The message to stop the run with, once, or None."""
        if self.settled:
            return None
        category = classify(contact)
        if category is None or any(classify(seen) != category for seen in self._seen):
            self.settled = True
            return None
        self._seen.append(contact)
        if len(self._seen) < self.attempts:
            return None
        self.settled = True
        return self._message(category, contact)

    def _message(self, category: str, last: Contact) -> str:
        n = self.attempts
        url = last.url or "the endpoint"
        if category == UNREACHABLE:
            if _DNS.search(last.message):
                fix = "is the host name right?"
            elif _TLS.search(last.message):
                fix = "does the server speak https, or only http (or is its certificate trusted here)?"
            else:
                fix = "is the server running, and are the host and port right?"
            return f"cannot reach {url}: the first {n} attempts failed to connect ({last.message}); {fix}"
        what = f"HTTP {last.status}"
        said = last.message.removeprefix(f"{what}: ")
        came = f"the first {n} requests to {url} got {what} ({said})"
        if last.status is not None and 300 <= last.status < 400:
            where = f" to {last.location}" if last.location else ""
            return f"{came}: the server redirects{where}; give --base-url the URL it redirects to"
        if model_unknown(last):
            model = f" {last.model!r}" if last.model else ""
            return (
                f"{came}: the server says the model{model} is unknown; is --model one it serves? "
                "(streamdump check lists the models it serves)"
            )
        if last.status == 405:
            return (
                f"{came}: the server has this path but not for POST; is the base URL right "
                "(does it end in /v1, or whatever your provider's base URL ends in)?"
            )
        return (
            f"{came}: no such route on this server; does the base URL end in /v1 "
            "(or whatever your provider's base URL ends in)? is the model served? is the server the one you meant?"
        )
