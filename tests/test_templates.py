"""Templates over records: parsing, rendering, and records as input lines (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streamdump.jobs import Defaults, LineError, parse_line, request_hash
from streamdump.templates import TemplateError, parse_template


@pytest.mark.parametrize(
    ("template", "record", "rendered"),
    [
        ("Summarize {title}.", {"title": "Dune"}, "Summarize Dune."),
        ("{a}{b}", {"a": "x", "b": "y"}, "xy"),
        (
            "{author.name} ({author.born.year})",
            {"author": {"name": "Le Guin", "born": {"year": 1929}}},
            "Le Guin (1929)",
        ),
        ("{n} {ok} {ratio}", {"n": 3, "ok": True, "ratio": 0.5}, "3 true 0.5"),
        ("{tags} {meta}", {"tags": ["a", "é"], "meta": {"k": 1}}, '["a", "é"] {"k": 1}'),
        ('JSON like {{"a": {v}}}', {"v": 1}, 'JSON like {"a": 1}'),
        ("{{title}}", {}, "{title}"),
        ("}}{{", {}, "}{"),
        (
            "{名前} {snake_case} {kebab-case} {x1}",
            {"名前": "a", "snake_case": "b", "kebab-case": "c", "x1": "d"},
            "a b c d",
        ),
        ("{id}: {model}", {"id": "i", "model": "m"}, "i: m"),
        ("line one\n{x}\nline three", {"x": "two"}, "line one\ntwo\nline three"),
        ("{x}", {"x": "{not a placeholder}"}, "{not a placeholder}"),  # values are never parsed
        ("no fields at all", {}, "no fields at all"),
    ],
)
def test_render(template: str, record: dict[str, Any], rendered: str) -> None:
    assert parse_template(template).render(record) == rendered


@pytest.mark.parametrize(
    ("template", "record", "message"),
    [
        ("{title}", {}, 'no field "title"'),
        ("{a} {b} {a}", {}, 'no fields "a", "b"'),
        ("{a.b}", {"a": {}}, 'no field "a.b"'),
        ("{a.b}", {"a": "text"}, '"a" is not an object, so it has no "b"'),
        ("{a.b.c}", {"a": {"b": [1]}}, '"a.b" is not an object, so it has no "c"'),
        ("{a}", {"a": None}, '"a" is null'),
    ],
)
def test_render_errors_name_the_field(template: str, record: dict[str, Any], message: str) -> None:
    with pytest.raises(TemplateError) as info:
        parse_template(template, label="--template").render(record)
    assert str(info.value).startswith("--template needs what this record lacks: ")
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("template", "where", "message"),
    [
        ("{", "1: column 1", "is not a placeholder"),
        ("ab {title", "1: column 4", "is not a placeholder"),
        ("{}", "1: column 1", "'{}' is not a placeholder"),
        ('say {"a": 1}', "1: column 5", "is not a placeholder"),
        ("{ name }", "1: column 1", "is not a placeholder"),
        ("{x.__class__.}", "1: column 1", "is not a placeholder"),
        ("{a..b}", "1: column 1", "is not a placeholder"),
        ("{0[0]}", "1: column 1", "is not a placeholder"),
        ("{a!r}", "1: column 1", "is not a placeholder"),
        ("{a:>10}", "1: column 1", "is not a placeholder"),
        ("ok\nstill ok\n  }", "3: column 3", "a single '}'"),
    ],
)
def test_syntax_errors_say_where(template: str, where: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_template(template, source="t.txt")
    assert str(info.value).startswith(f"t.txt:{where}: ")
    assert message in str(info.value)
    assert "{{" in str(info.value)  # how to write a literal brace


def test_fields_are_listed_in_order() -> None:
    assert parse_template("{a} {b.c} {{d}}").fields == ["a", "b.c"]


T = parse_template("Translate to {lang}: {text}")
S = parse_template("You translate into {lang}.", label="--system-template")


def line(**fields: Any) -> str:
    return json.dumps(fields)


def test_a_record_becomes_a_job() -> None:
    job = parse_line(line(id="r1", lang="fr", text="hello"), 3, Defaults(model="m", template=T))
    assert (job.id, job.model, job.params) == ("r1", "m", {})
    assert job.messages == [{"role": "user", "content": "Translate to fr: hello"}]


def test_a_record_may_carry_model_and_params_and_use_any_field_name() -> None:
    record = line(
        id="r", lang="de", text="x", model="big", params={"seed": 1}, prompt="a field like any other", url="u"
    )
    job = parse_line(record, 1, Defaults(model="m", template=T, params={"temperature": 0.1}))
    assert (job.model, job.params) == ("big", {"temperature": 0.1, "seed": 1})
    assert job.messages[-1]["content"] == "Translate to de: x"


def test_system_template_and_system_default() -> None:
    job = parse_line(line(lang="it", text="x"), 7, Defaults(model="m", template=T, system_template=S))
    assert job.id == "line-000007"
    assert job.messages[0] == {"role": "system", "content": "You translate into it."}
    fixed = parse_line(line(lang="it", text="x"), 7, Defaults(model="m", template=T, system="Be brief."))
    assert fixed.messages[0] == {"role": "system", "content": "Be brief."}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"text": "x"}, '--template needs what this record lacks: no field "lang"'),
        ({"lang": None, "text": "x"}, '"lang" is null'),
        ({"text": "x", "id": ""}, '"id" is empty'),
        ({"lang": "fr", "text": "x", "params": {"stream": False}}, "may not set stream"),
        ({"lang": "fr", "text": "x", "model": 3}, '"model" must be a non-empty string'),
    ],
)
def test_bad_records(record: dict[str, Any], message: str) -> None:
    with pytest.raises(LineError, match=message):
        parse_line(json.dumps(record), 1, Defaults(model="m", template=T))


def test_both_templates_report_together() -> None:
    with pytest.raises(LineError) as info:
        parse_line(line(), 1, Defaults(model="m", template=T, system_template=S))
    assert "--template needs" in str(info.value) and "--system-template needs" in str(info.value)


def test_an_empty_rendered_prompt_is_an_error() -> None:
    with pytest.raises(LineError, match="empty prompt"):
        parse_line(line(x="  "), 1, Defaults(model="m", template=parse_template("{x}")))


def test_the_hash_covers_the_rendered_prompt_not_the_template() -> None:
    one = parse_line(line(id="a", lang="fr", text="hi"), 1, Defaults(model="m", template=T))
    other = parse_line(
        line(id="a", l="fr", t="hi"), 1, Defaults(model="m", template=parse_template("Translate to {l}: {t}"))
    )
    assert one.request_hash == other.request_hash == request_hash("m", one.messages, {})
    changed = parse_line(line(id="a", lang="fr", text="bye"), 1, Defaults(model="m", template=T))
    assert changed.request_hash != one.request_hash
