"""Which handler serves a request: exact paths (with ``{name}`` segments), 404 and 405 otherwise. Pure.

A real server answers only the paths it serves, so a client pointed at the wrong base URL fails
against the simulator as it would against the real thing::

    table.add("POST", "/v1/chat/completions", handler)
    table.add("GET", "/v1/batches/{batch_id}", handler)   # params {"batch_id": ...}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

H = TypeVar("H")


@dataclass(frozen=True, slots=True)
class Match(Generic[H]):
    handler: H
    params: dict[str, str]


@dataclass(frozen=True, slots=True)
class Miss:
    """No handler: 404 when no route has this path, 405 (with ``allow``) when none has this method."""

    status: int
    allow: tuple[str, ...] = ()


def _segments(path: str) -> list[str]:
    return path.split("/")


def _bind(pattern: list[str], path: list[str]) -> dict[str, str] | None:
    """The ``{name}`` values if ``path`` has the pattern's shape, else None."""
    if len(pattern) != len(path):
        return None
    params = {}
    for want, got in zip(pattern, path, strict=True):
        if want.startswith("{") and want.endswith("}"):
            if not got:
                return None
            params[want[1:-1]] = got
        elif want != got:
            return None
    return params


@dataclass(slots=True)
class RouteTable(Generic[H]):
    _routes: list[tuple[str, list[str], H]] = field(default_factory=list)

    def add(self, method: str, pattern: str, handler: H) -> None:
        """Serve ``method pattern`` with ``handler`` (a later route for the same pair wins)."""
        self._routes.insert(0, (method.upper(), _segments(pattern), handler))

    def match(self, method: str, path: str) -> Match[H] | Miss:
        segments = _segments(path)
        allow: list[str] = []
        for route_method, pattern, handler in self._routes:
            params = _bind(pattern, segments)
            if params is None:
                continue
            if route_method == method:
                return Match(handler, params)
            if route_method not in allow:
                allow.append(route_method)
        return Miss(405, tuple(sorted(allow))) if allow else Miss(404)
