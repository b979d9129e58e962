"""One line of the prompts file -> a Job, in its wire format. Pure; no I/O.

``parse_line`` checks a line and builds its request; ``Defaults`` is what the command line
supplies; the request hash decides what resume skips.  Reading the file is ``inputfile``'s job.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import _constants as C
from .errors import LineError, SetupError
from .jsonline import load_line
from .schema import (
    AnswerSchema,
    request_schema_problem,
    requested_format,
    schema_from_options,
    schema_options,
    with_schema,
)
from .templates import Template, TemplateError, templates_from_options
from .wire import BY_BATCH_URL, DEFAULT, NAMES, WireFormat, wire_for
from .wire.chat import check_messages

if TYPE_CHECKING:
    from .tokens import Counter

DEFAULT_API = DEFAULT

# Parameters streamdump sets itself; a line may not set them (nor its format's input fields).
RESERVED_PARAMS = frozenset({"model", "stream", "stream_options"})
MAX_PROBLEMS = 50


@dataclass(frozen=True, slots=True)
class Defaults:
    """What the command line supplies to lines that do not say."""

    model: str
    system: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    template: Template | None = None  # --template: every line is a record rendered into the prompt
    system_template: Template | None = None
    api: str = DEFAULT_API  # --api: the wire format of lines that are not Batch API lines
    max_tokens: int | None = None  # --max-tokens: each format's own output limit, where a line sets none
    answer_schema: AnswerSchema | None = None  # --json-schema: asked for in each format's way, where a line names none

    @property
    def wire(self) -> WireFormat:
        return wire_for(self.api)


def check_api(api: str) -> str:
    """``--api``'s value, checked against the formats streamdump speaks. Raises SetupError."""
    if api not in NAMES:
        raise SetupError(f"--api must be one of {', '.join(NAMES)}, not {api!r}")
    return api


def cli_defaults(
    *,
    model: str | None,
    api: str,
    system: str | None,
    temperature: float | None,
    max_tokens: int | None,
    template: str | None,
    template_text: str | None,
    system_template: str | None,
    system_template_text: str | None,
    answer_schema: AnswerSchema | None = None,
) -> Defaults:
    """The Defaults that the options of ``run`` and ``batch submit`` describe. Raises SetupError."""
    prompt_template, system_tpl = templates_from_options(
        template=template,
        template_text=template_text,
        system_template=system_template,
        system_template_text=system_template_text,
        system=system,
    )
    return Defaults(
        model=model or C.DEFAULT_MODEL,
        system=system,
        params={} if temperature is None else {"temperature": temperature},
        template=prompt_template,
        system_template=system_tpl,
        api=check_api(api),
        max_tokens=max_tokens,
        answer_schema=answer_schema,
    )


def defaults_options(defaults: Defaults) -> dict[str, Any]:
    """What summary.json's ``options`` record of the defaults; ``defaults_from_options`` reads it back
    (``status --prompts`` recomputes request hashes under the defaults the run used)."""
    return {
        "model": defaults.model,
        "api": defaults.api,
        "system": defaults.system,
        "params": defaults.params,
        "max_tokens": defaults.max_tokens,
        "answer_schema": None if defaults.answer_schema is None else schema_options(defaults.answer_schema),
        "template_text": defaults.template.text if defaults.template is not None else None,
        "system_template_text": defaults.system_template.text if defaults.system_template is not None else None,
    }


def defaults_from_options(options: dict[str, Any], *, default_model: str) -> Defaults:
    """The Defaults a run used, from its summary's ``options`` (older summaries included: they have
    no ``api`` and keep ``--max-tokens`` in ``params``). Raises ValueError for options it cannot read."""
    template, system_template = templates_from_options(
        template=None,
        template_text=options.get("template_text"),
        system_template=None,
        system_template_text=options.get("system_template_text"),
        system=options.get("system"),
    )
    api = options.get("api") or DEFAULT_API
    wire_for(api)  # KeyError for a format this version does not know
    max_tokens = options.get("max_tokens")
    return Defaults(
        model=options.get("model") or default_model,
        system=options.get("system"),
        params=dict(options.get("params") or {}),
        template=template,
        system_template=system_template,
        api=api,
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
        answer_schema=schema_from_options(options.get("answer_schema")),
    )


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    line: int
    model: str
    request: dict[str, Any]  # the input fields of its wire format (messages; input/instructions; prompt)
    params: dict[str, Any]
    name: str = ""
    request_hash: str = ""
    api: str = DEFAULT_API

    @property
    def wire(self) -> WireFormat:
        return wire_for(self.api)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """A chat job's messages (empty for other formats)."""
        return list(self.request.get("messages") or ())

    @property
    def choices(self) -> int:
        """How many choices the request asks for (its ``n``)."""
        n = self.params.get("n", 1)
        return n if isinstance(n, int) and n > 1 else 1

    @property
    def output_limit(self) -> int | None:
        """The output limit per choice (max_completion_tokens, max_tokens, max_output_tokens), if set."""
        for name in self.wire.limit_params:
            limit = self.params.get(name)
            if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
                return limit
        return None

    def output_budget(self, expected: int) -> int:
        """The most output tokens the request may cost: its limit (or ``expected``) for each choice."""
        return (self.output_limit or expected) * self.choices

    def prompt_tokens(self, counter: Counter) -> int:
        return self.wire.count_prompt(counter, self.request)

    def body(self) -> dict[str, Any]:
        """The request body, without the streaming options."""
        return {**self.params, "model": self.model, **self.request}


def request_hash(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    """A stable hash of everything that decides a chat response: model, messages, parameters."""
    return _hash({"model": model, "messages": messages, "params": params})


def job_hash(
    api: str, model: str, request: dict[str, Any], params: dict[str, Any], checked: object | None = None
) -> str:
    """The request hash of any format. The format enters it only when it is not chat, so out-dirs
    written before there were other formats resume unchanged.  ``checked`` is a schema the answer is
    checked against without being sent (text completions): a new one redoes the items on resume."""
    if api == DEFAULT_API and checked is None:
        return request_hash(model, request["messages"], params)
    value: dict[str, object] = {"api": api, "model": model, "request": request, "params": params}
    if checked is not None:
        value["checked"] = checked
    return _hash(value)


def _hash(value: dict[str, Any]) -> str:
    canonical = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def default_id(line: int) -> str:
    return f"line-{line:06d}"


def _check_params(params: object, where: str, wire: WireFormat) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise LineError(f'"{where}" must be an object')
    reserved = sorted((RESERVED_PARAMS | wire.input_fields) & params.keys())
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
    obj = load_line(text)
    if not isinstance(obj, dict):
        raise LineError(f"expected a JSON object, got {type(obj).__name__}")

    wire = defaults.wire
    if defaults.template is not None:
        # A record: its fields fill the template; only "id", "model" and "params" mean more.
        item_id = _check_id(obj.get("id"), "id")
        prompt, system = _render(obj, defaults.template, defaults.system_template, defaults.system)
        request = wire.from_prompt(prompt, system)
        model = obj.get("model", defaults.model)
        params = _check_params(obj.get("params", {}), "params", wire)
    elif "custom_id" in obj or "body" in obj or "url" in obj:
        item_id = _check_id(obj.get("custom_id"), "custom_id")
        if obj.get("method", "POST") != "POST":
            raise LineError(f'Batch API "method" must be POST, not {obj.get("method")!r}')
        url = obj.get("url")
        found = BY_BATCH_URL.get(url) if isinstance(url, str) else None
        if found is None:
            urls = ", ".join(BY_BATCH_URL)
            raise LineError(f'unknown Batch API "url" {obj.get("url")!r}: one of {urls} is supported')
        wire = found
        body = obj.get("body")
        if not isinstance(body, dict):
            raise LineError('Batch API "body" must be an object')
        request = wire.from_body(body)
        model = body.get("model", defaults.model)
        reserved = RESERVED_PARAMS | wire.input_fields
        params = {k: v for k, v in body.items() if k not in reserved}
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
            request = wire.from_prompt(prompt, system)
        elif "messages" in obj:
            request = wire.from_messages(check_messages(obj["messages"]), defaults.system)
        else:
            raise LineError('a line needs "prompt" or "messages"')
        model = obj.get("model", defaults.model)
        params = _check_params(obj.get("params", {}), "params", wire)

    if not isinstance(model, str) or not model:
        raise LineError('"model" must be a non-empty string')
    params = {**defaults.params, **params}
    if defaults.max_tokens is not None and not any(name in params for name in wire.limit_params):
        params[wire.limit_param] = defaults.max_tokens
    checked = None
    if defaults.answer_schema is not None:
        params = with_schema(wire.name, params, defaults.answer_schema)
        if requested_format(wire.name, params) is None:  # not sent (completions): hashed apart
            checked = defaults.answer_schema.schema
    problem = request_schema_problem(wire.name, params, defaults.answer_schema)
    if problem is not None:
        raise LineError(f"the line's JSON schema is not a JSON Schema (Draft 2020-12): {problem}")
    n = params.get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise LineError('"n" must be a positive integer')
    wire.check_params(params)
    return Job(
        id=item_id or default_id(line),
        line=line,
        model=model,
        request=request,
        params=params,
        request_hash=job_hash(wire.name, model, request, params, checked) if with_hash else "",
        api=wire.name,
    )


def _render(
    record: dict[str, Any], template: Template, system_template: Template | None, system: str | None
) -> tuple[str, str | None]:
    problems = []
    prompt = ""
    try:
        prompt = template.render(record)
    except TemplateError as exc:
        problems.append(str(exc))
    if system_template is not None:
        try:
            system = system_template.render(record)
        except TemplateError as exc:
            problems.append(str(exc))
    if problems:
        raise LineError("; ".join(problems))
    if not prompt.strip():
        raise LineError(f"{template.label} renders an empty prompt for this record")
    return prompt, system


__all__ = [
    "Defaults",
    "Job",
    "LineError",
    "defaults_from_options",
    "defaults_options",
    "job_hash",
    "parse_line",
    "request_hash",
]
