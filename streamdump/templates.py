"""Prompt templates over records (``--template``, ``--system-template``).

The syntax is ``str.format``'s, cut down to what data needs::

    {title}          the record's field "title"
    {author.name}    field "name" of the object in field "author" (any depth)
    {{  }}           a literal brace

A field name is letters (of any script), digits, ``_`` and ``-``.  Any other ``{`` or ``}`` is
a mistake in the template, reported with its line before anything else is read: a prompt that
shows JSON must double its braces.  The parser is our own: ``str.format`` would also allow
attribute and index access (``{x.__class__}``), which a template from a file should not have.

A value renders as itself when it is a string, and as JSON otherwise (numbers, booleans, lists,
objects).  A field that is missing, or null, is an input error of that record's line.

``parse_template`` and ``Template.render`` are pure; ``templates_from_options`` reads the files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InputError, SetupError

_FIELD = re.compile(r"[\w-]+(?:\.[\w-]+)*")
_BRACE = re.compile(r"[{}]")

Piece = str | tuple[str, ...]  # literal text, or the path of a field


class TemplateError(ValueError):
    """A record does not fit the template (the caller adds FILE:LINE)."""


@dataclass(frozen=True, slots=True)
class Template:
    label: str  # the option it came from, for messages: "--template", "--system-template"
    pieces: tuple[Piece, ...]
    text: str = ""  # the template as written (recorded in summary.json; status re-reads it)

    @property
    def fields(self) -> list[str]:
        return [".".join(piece) for piece in self.pieces if isinstance(piece, tuple)]

    def render(self, record: Mapping[str, Any]) -> str:
        """The template with the record's values in. Raises TemplateError naming every field that is wrong."""
        out: list[str] = []
        missing: list[str] = []
        problems: list[str] = []
        for piece in self.pieces:
            if isinstance(piece, str):
                out.append(piece)
                continue
            value: Any = record
            for depth, key in enumerate(piece):
                if not isinstance(value, Mapping):
                    problems.append(f'"{".".join(piece[:depth])}" is not an object, so it has no "{key}"')
                    break
                if key not in value:
                    missing.append(".".join(piece))
                    break
                value = value[key]
            else:
                if value is None:
                    problems.append(f'"{".".join(piece)}" is null')
                else:
                    out.append(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
        if missing:
            names = ", ".join(f'"{name}"' for name in dict.fromkeys(missing))
            problems.insert(0, f"no field {names}" if len(missing) == 1 else f"no fields {names}")
        if problems:
            raise TemplateError(f"{self.label} needs what this record lacks: {'; '.join(problems)}")
        return "".join(out)


def _where(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - text.rfind("\n", 0, index)
    return f"{line}: column {column}"


def parse_template(text: str, *, label: str = "--template", source: str = "--template") -> Template:
    """Parse a template. Raises ValueError as ``SOURCE:LINE: column C: what is wrong``."""
    pieces: list[Piece] = []
    literal: list[str] = []
    index = 0
    while True:
        match = _BRACE.search(text, index)
        if match is None:
            literal.append(text[index:])
            break
        at = match.start()
        literal.append(text[index:at])
        brace = text[at]
        if text.startswith(brace * 2, at):
            literal.append(brace)
            index = at + 2
            continue
        if brace == "}":
            raise ValueError(f"{source}:{_where(text, at)}: a single '}}' (write {{{{ and }}}} for literal braces)")
        end = text.find("}", at + 1)
        name = text[at + 1 : end] if end >= 0 else ""
        if end < 0 or not _FIELD.fullmatch(name):
            shown = text[at : end + 1] if 0 <= end < at + 40 else text[at : at + 20] + "..."
            raise ValueError(
                f"{source}:{_where(text, at)}: {shown!r} is not a placeholder such as {{name}} or {{a.b}} "
                "(write {{ and }} for literal braces)"
            )
        if "".join(literal):
            pieces.append("".join(literal))
        literal = []
        pieces.append(tuple(name.split(".")))
        index = end + 1
    if "".join(literal):
        pieces.append("".join(literal))
    return Template(label, tuple(pieces), text)


def _read(path: str, label: str) -> str:
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise SetupError(f"{label} {path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError([f"{path}: not valid UTF-8"]) from None
    # An editor's final newline is not part of the prompt.
    return text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text


def _one(label: str, path: str | None, text: str | None) -> Template | None:
    if path is not None and text is not None:
        raise SetupError(f"give {label} or {label}-text, not both")
    if path is None and text is None:
        return None
    source = path if path is not None else f"{label}-text"
    body = _read(path, label) if path is not None else text
    assert body is not None
    if not body.strip():
        raise InputError([f"{source}: the template is empty"])
    try:
        return parse_template(body, label=label, source=source)
    except ValueError as exc:
        raise InputError([str(exc)]) from None


def templates_from_options(
    *,
    template: str | None,
    template_text: str | None,
    system_template: str | None,
    system_template_text: str | None,
    system: str | None,
) -> tuple[Template | None, Template | None]:
    """The prompt and system templates the command line asks for. Raises SetupError (exit 2)."""
    prompt = _one("--template", template, template_text)
    system_tpl = _one("--system-template", system_template, system_template_text)
    if system_tpl is not None and prompt is None:
        raise SetupError("--system-template needs --template (or --template-text): it renders records")
    if system_tpl is not None and system is not None:
        raise SetupError("give --system or --system-template, not both")
    return prompt, system_tpl
