"""First contact: the first attempts of a run tell a wrong endpoint from a bad moment (pure)."""

from __future__ import annotations

import dataclasses

import pytest

from streamdump.firstcontact import Contact, FirstContact, model_unknown

URL = "http://127.0.0.1:9/v1/chat/completions"


def unreachable(message: str) -> Contact:
    return Contact(status=None, kind="connection", reached=False, message=f"connection error: {message}")


REFUSED = unreachable("All connection attempts failed")
DNS = unreachable("[Errno -2] Name or service not known")
TLS = unreachable("[SSL: WRONG_VERSION_NUMBER] wrong version number")
NOT_FOUND = Contact(status=404, kind="http_404", reached=True, message="HTTP 404: Not Found", body={"detail": "x"})
NO_MODEL = Contact(
    status=404,
    kind="http_404",
    reached=True,
    message="HTTP 404: The model `llama` does not exist.",
    body={"error": {"message": "The model `llama` does not exist.", "type": "NotFoundError", "code": 404}},
)
OPENAI_NO_MODEL = Contact(
    status=404, kind="http_404", reached=True, message="HTTP 404: x", body={"error": {"code": "model_not_found"}}
)
METHOD = Contact(status=405, kind="http_405", reached=True, message="HTTP 405: Method Not Allowed")
REDIRECT = Contact(status=301, kind="http_301", reached=True, message="HTTP 301: Moved", location="https://h/v1/x")
LOST = Contact(status=None, kind="connection", reached=True, message="connection lost mid-stream: reset")
TIMEOUT = Contact(status=None, kind="timeout", reached=False, message="timed out connecting to the server")
BUSY = Contact(status=503, kind="http_503", reached=True, message="HTTP 503: overloaded")
LIMITED = Contact(status=429, kind="http_429", reached=True, message="HTTP 429: slow down")
BAD = Contact(status=400, kind="http_400", reached=True, message="HTTP 400: bad request")
STALL = Contact(status=None, kind="stall", reached=True, message="no data for 60 s (stalled)")
OK = None  # a success


def feed(outcomes: list[Contact | None], attempts: int = 3) -> list[str | None]:
    first = FirstContact(attempts=attempts)
    answers: list[str | None] = []
    for outcome in outcomes:
        if outcome is None:
            first.succeeded()
            answers.append(None)
        else:
            answers.append(first.failed(dataclasses.replace(outcome, url=URL, model="llama")))
    return answers


@pytest.mark.parametrize(
    ("outcomes", "stops_at"),
    [
        ([REFUSED, REFUSED, REFUSED], 2),
        ([REFUSED, DNS, TLS], 2),  # every way of failing to connect is one kind
        ([NOT_FOUND, NOT_FOUND, NOT_FOUND], 2),
        ([NOT_FOUND, METHOD, REDIRECT], 2),  # every wrong route is one kind
        ([NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND], 2),  # said once
        ([REFUSED, REFUSED], None),  # not yet three
        ([OK, REFUSED, REFUSED, REFUSED], None),  # a success settles it
        ([REFUSED, OK, REFUSED, REFUSED], None),
        ([REFUSED, REFUSED, OK], None),
        ([REFUSED, NOT_FOUND, NOT_FOUND, NOT_FOUND], None),  # mixed: neither kind
        ([NOT_FOUND, REFUSED, REFUSED, REFUSED], None),
        ([BUSY, REFUSED, REFUSED, REFUSED], None),  # a transient failure settles it too
        ([LIMITED, NOT_FOUND, NOT_FOUND, NOT_FOUND], None),
        ([REFUSED, REFUSED, BUSY, REFUSED], None),
        ([LOST, LOST, LOST], None),  # the server was reached: a mid-stream loss is not a wrong endpoint
        ([TIMEOUT, TIMEOUT, TIMEOUT], None),  # a slow server is not a wrong endpoint
        ([BAD, BAD, BAD], None),
        ([STALL, REFUSED, REFUSED, REFUSED], None),
    ],
)
def test_the_first_three_attempts_decide(outcomes: list[Contact | None], stops_at: int | None) -> None:
    answers = feed(outcomes)
    stopped = [index for index, answer in enumerate(answers) if answer is not None]
    assert stopped == ([] if stops_at is None else [stops_at])


def test_the_number_of_attempts_is_a_setting() -> None:
    assert feed([REFUSED], attempts=1)[0] is not None
    assert feed([REFUSED] * 4, attempts=5) == [None] * 4


@pytest.mark.parametrize(
    ("outcome", "says"),
    [
        (REFUSED, ["cannot reach " + URL, "failed to connect", "All connection attempts failed", "server running"]),
        (DNS, ["cannot reach", "host name right"]),
        (TLS, ["cannot reach", "https, or only http"]),
        (NOT_FOUND, [URL, "got HTTP 404 (Not Found)", "end in /v1", "model served"]),
        (NO_MODEL, [URL, "model 'llama' is unknown", "does not exist", "--model", "streamdump check"]),
        (OPENAI_NO_MODEL, ["model 'llama' is unknown"]),
        (METHOD, ["HTTP 405", "not for POST", "/v1"]),
        (REDIRECT, ["HTTP 301", "redirects to https://h/v1/x", "--base-url"]),
    ],
)
def test_the_message_names_the_url_what_came_back_and_the_fix(outcome: Contact, says: list[str]) -> None:
    message = feed([outcome] * 3)[-1]
    assert message is not None
    for words in says:
        assert words in message
    assert "HTTP 404: " not in message  # what came back is said once


def test_an_unknown_model_is_not_blamed_on_the_path() -> None:
    message = feed([NO_MODEL] * 3)[-1]
    assert message is not None and "/v1" not in message.split(")", 1)[1]


@pytest.mark.parametrize(
    ("message", "body", "unknown"),
    [
        (
            "The model `gpt-5x` does not exist or you do not have access to it.",
            {"error": {"code": "model_not_found"}},
            True,
        ),
        (
            "model 'llama3' not found, try pulling it first",
            {"error": "model 'llama3' not found, try pulling it first"},
            True,
        ),
        (
            "The model `x` does not exist.",
            {"error": {"message": "The model `x` does not exist.", "type": "NotFoundError"}},
            True,
        ),
        ("Invalid model name passed in model=foo", None, True),
        (
            "Unknown request URL: POST /chat/completions. Please check the URL for typos.",
            {"error": {"type": "invalid_request_error", "code": "unknown_url"}},
            False,
        ),
        ("Not Found", {"detail": "Not Found"}, False),
        ("no route POST /chat/completions; the model field is fine. Route unknown", None, False),
    ],
)
def test_which_errors_say_the_model_is_unknown(message: str, body: object, unknown: bool) -> None:
    contact = Contact(status=404, kind="http_404", reached=True, message=f"HTTP 404: {message}", body=body)
    assert model_unknown(contact) is unknown
