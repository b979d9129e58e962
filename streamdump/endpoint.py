"""Where requests go: the base URL checked before anything is sent, the key, the URL fit to show.

``base_url_problem`` is pure: it says what is wrong with a base URL and how to fix it, or None.
It assumes nothing about the path beyond the routes the client appends itself: not every
provider's base URL ends in ``/v1``.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass

from .apikey import check_env_name, check_key
from .errors import SetupError

# The routes the client appends to the base URL; a base URL ending in one of them is doubled up.
ROUTES = ("/chat/completions", "/completions", "/responses", "/models")
SCHEMES = ("http", "https")


@dataclass(frozen=True, slots=True)
class Endpoint:
    base_url: str | None
    api_key: str | None
    simulate: bool = False


def base_url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a base URL, with the fix; None when nothing is."""
    url = url.strip()
    shown = _shown(url)
    parts = urllib.parse.urlsplit(url)
    if "://" not in url:
        fixed = _shown("http://" + url.lstrip("/"))
        return f"{fixed.removeprefix('http://')!r} has no http:// or https:// scheme: try {fixed}"
    if parts.scheme.lower() not in SCHEMES or not parts.netloc:
        return f"{shown!r} is not an http:// or https:// URL with a host, e.g. http://localhost:8000/v1"
    try:
        host, _ = parts.hostname, parts.port
    except ValueError:
        return f"{shown!r} has a bad port: give host:PORT with a number, e.g. http://localhost:8000/v1"
    if not host:
        return f"{shown!r} has no host: e.g. http://localhost:8000/v1"
    if parts.query or parts.fragment:
        bare = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        return (
            f"{shown!r} has a query or fragment, which the client would drop or misplace when it appends "
            f"a route: give the base URL alone, {_shown(bare)!r}"
        )
    path = parts.path.rstrip("/")
    for route in ROUTES:
        if path.lower().endswith(route):
            base = urllib.parse.urlunsplit((parts.scheme, parts.netloc, path[: -len(route)], "", ""))
            return (
                f"{shown!r} ends in {route}, which streamdump appends itself: "
                f"give the part before it, --base-url {_shown(base)}"
            )
    return None


def resolve_endpoint(*, base_url: str | None, api_key_env: str, simulate: bool) -> Endpoint:
    """Where requests go and with which key. Raises SetupError when there is nowhere to send, when
    the base URL cannot work, or when the key (or the name of its variable) is not fit to be sent."""
    check_env_name(api_key_env)
    key = os.environ.get(api_key_env) or None
    if simulate:
        return Endpoint(None, None, simulate=True)
    if key is not None:
        check_key(key, env=api_key_env)
    if base_url:
        problem = base_url_problem(base_url)
        if problem is not None:
            raise SetupError(f"--base-url (or OPENAI_BASE_URL): {problem}")
    if key is None and not base_url:
        raise SetupError(
            f"no API key: set {api_key_env} (or name another variable with --api-key-env), "
            "or point --base-url at a local server, or try the built-in simulator with --simulate"
        )
    return Endpoint(base_url or None, key)


def public_url(url: str | None) -> str | None:
    """A URL fit to show or to keep in summary.json: without user:password and without a query
    (keys hide there)."""
    return None if url is None else _shown(url)


def _shown(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))
