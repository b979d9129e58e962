"""Rate limits, usage accounting, the dry run and status, end to end through the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import tiktoken
from typer.testing import CliRunner

from streamdump import tokens
from streamdump.cli import app
from streamdump.simulator import Simulator

from support import Ran, expected_text, write_jsonl


def starts(sim: Simulator) -> list[float]:
    times = sorted(r.at for r in sim.stats.requests)
    return [t - times[0] for t in times]


def test_rpm_spreads_requests(start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path) -> None:
    sim = start_sim()
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"prompt": f"p{n}"} for n in range(16)])
    ran = run_cli(prompts, "--rpm", "600", "-c", "8", sim=sim)  # 10 a second, 10 at once
    assert ran.exit_code == 0, ran.stderr
    # The spread itself is tested on the gate with a fake clock (test_gate.py); through HTTP only a
    # lower bound is safe on a busy machine: the 16th request waited for five refills of 0.1 s,
    # less however late the first one started.
    assert starts(sim)[-1] >= 0.4


def test_tpm_bounds_reserved_tokens_net_of_what_comes_back(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(tokens_per_second=400, length=12)
    rows = [{"prompt": f"p{n}", "params": {"max_tokens": 60}} for n in range(12)]
    prompts = write_jsonl(tmp_path / "p.jsonl", rows)
    reservation = tokens.counter_for("gpt-4o-mini").messages([{"role": "user", "content": "p1"}]) + 60
    used = 1 + 12  # what the simulator reports for each: one prompt word, twelve pieces
    ran = run_cli(prompts, "--tpm", "6000", "-c", "4", sim=sim)  # 100 tokens a second
    assert ran.exit_code == 0, ran.stderr
    requests = sorted(sim.stats.requests, key=lambda r: r.at)
    first = requests[0].at
    for count, request in enumerate(requests, start=1):
        given_back = sum(reservation - used for r in requests if r.ended is not None and r.ended < request.at)
        net = count * reservation - given_back
        # As the server sees it; the client reserved at least this much, at most a second's budget ahead.
        assert net <= 100 * (request.at - first + 1) + reservation + 10, (count, net)
    # Reservations came back: more requests started than reservation alone would allow.
    assert 12 * reservation > 100 * (requests[-1].at - first + 1) + reservation


def test_header_driven_slowdown_avoids_429s(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(rpm_limit=5, rpm_window=0.3)
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"prompt": f"p{n}"} for n in range(15)])
    ran = run_cli(prompts, "-c", "4", sim=sim)
    assert ran.exit_code == 0, ran.stderr
    assert sim.stats.rate_limited == 0
    assert len(sim.stats.requests) == 15


def test_usage_is_estimated_with_tiktoken_when_the_server_sends_none(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(usage=False)
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "count me", "system": "be brief"}])
    ran = run_cli(prompts, sim=sim)
    assert ran.exit_code == 0, ran.stderr
    encoding = tiktoken.get_encoding("o200k_base")
    text = expected_text("count me")
    # The chat format: 3 per message, the texts, 3 to prime the reply.
    prompt = (
        3
        + 3
        + len(encoding.encode("be brief"))
        + len(encoding.encode("system"))
        + 3
        + len(encoding.encode("count me"))
        + len(encoding.encode("user"))
    )
    assert ran.by_id()["a"]["usage"] == {
        "prompt_tokens": prompt,
        "completion_tokens": len(encoding.encode(text)),
        "source": "estimate",
    }


def test_server_usage_is_recorded(sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "one two three"}])
    ran = run_cli(prompts, sim=sim)
    assert ran.by_id()["a"]["usage"] == {"prompt_tokens": 3, "completion_tokens": 12, "source": "server"}
    assert sim.stats.requests[0].body["stream_options"] == {"include_usage": True}


def test_server_rejecting_stream_options_is_asked_again_without_and_the_run_remembers(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(reject_stream_options=True)
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": f"i{n}", "prompt": f"p{n}"} for n in range(5)])
    ran = run_cli(prompts, "-c", "1", sim=sim)
    assert ran.exit_code == 0, ran.stderr
    with_options = [r for r in sim.stats.requests if "stream_options" in (r.body or {})]
    assert len(with_options) == 1  # only the first request; the run remembered
    assert len(sim.stats.requests) == 6
    assert all(e["usage"]["source"] == "estimate" for e in ran.manifest())
    assert ran.by_id()["i0"]["attempts"] == 2


def test_dry_run_counts_like_tiktoken_offline_with_an_empty_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sim: Simulator
) -> None:
    empty = tmp_path / "empty-cache"
    empty.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(empty))
    monkeypatch.setattr(tokens, "_loaded", {})
    monkeypatch.setattr(tokens, "_counters", {})

    def no_network(url: str) -> bytes:
        raise AssertionError(f"tiktoken tried to download {url}")

    monkeypatch.setattr("tiktoken.load.read_file", no_network)
    rows = [
        {"id": "a", "prompt": "Héllo wörld, 日本語 and code: def f(x): return x**2", "params": {"max_tokens": 50}},
        {
            "id": "b",
            "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "q?"}],
            "model": "gpt-4",
        },
        {"id": "c", "prompt": "no max tokens here"},
    ]
    prompts = write_jsonl(tmp_path / "p.jsonl", rows)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "run",
            str(prompts),
            "-o",
            str(out),
            "--dry-run",
            "--base-url",
            sim.base_url,
            "--price-in",
            "2.5",
            "--price-out",
            "10",
            "--expected-output-tokens",
            "200",
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert list(empty.iterdir()) == []  # nothing downloaded into the cache
    o200k_counter = tokens.counter_for("gpt-4o-mini")
    cl100k_counter = tokens.counter_for("gpt-4")
    assert o200k_counter.encoding is not None and o200k_counter.encoding.name == "o200k_base"
    assert cl100k_counter.encoding is not None and cl100k_counter.encoding.name == "cl100k_base"
    a = 3 + 3 + len(o200k_counter.encoding.encode(rows[0]["prompt"])) + 1
    c = 3 + 3 + len(o200k_counter.encoding.encode(rows[2]["prompt"])) + 1
    b = 3 + 2 * 3 + len(cl100k_counter.encoding.encode("sys")) + 1 + len(cl100k_counter.encoding.encode("q?")) + 1
    lines = result.stdout.splitlines()
    row = {
        line.split()[0]: line.split()[1:]
        for line in lines
        if line and line.split()[0] in ("gpt-4o-mini", "gpt-4", "total")
    }
    assert row["gpt-4o-mini"] == ["2", f"{a + c:,}", f"{50 + 200:,}"]
    assert row["gpt-4"] == ["1", f"{b:,}", "200"]
    assert row["total"] == ["3", f"{a + b + c:,}", "450"]
    assert "2 items set no max_tokens" in result.stdout
    assert "cost: $" in result.stdout
    assert sim.stats.requests == []
    assert not out.exists()


def test_dry_run_of_invalid_input_exits_2(tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "ok"}, "{bad"])
    result = CliRunner().invoke(app, ["run", str(prompts), "-o", str(tmp_path / "out"), "--dry-run"])
    assert result.exit_code == 2
    assert f"{prompts}:2: invalid JSON" in result.stderr
    assert not (tmp_path / "out").exists()


def test_status_text_json_and_what_is_left(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(faults=["status=400,match=bad"])
    rows = [{"id": "good", "prompt": "good"}, {"id": "bad", "prompt": "bad"}]
    prompts = write_jsonl(tmp_path / "p.jsonl", rows)
    ran = run_cli(prompts, sim=sim)
    assert ran.exit_code == 1
    write_jsonl(
        prompts,
        [
            *rows,
            {"id": "new", "prompt": "new"},
        ],
    )
    runner = CliRunner()
    text = runner.invoke(app, ["status", str(ran.out), "--prompts", str(prompts)])
    assert text.exit_code == 1
    assert "2 items: 1 failed, 1 ok" in text.stdout
    assert "failed bad: HTTP 400: simulated 400" in text.stdout
    assert "1 of 3 done, 2 to do" in text.stdout
    as_json = runner.invoke(app, ["status", str(ran.out), "--prompts", str(prompts), "--json"])
    data = json.loads(as_json.stdout)
    assert data["statuses"] == {"ok": 1, "failed": 1}
    assert data["failed"][0]["id"] == "bad" and data["failed"][0]["error"]["status"] == 400
    assert data["prompts"]["missing"] == ["new"] and data["prompts"]["not_ok"] == ["bad"]
    assert data["tokens"]["completion"] == 12
    assert data["complete"] is False


def test_status_sees_a_changed_prompt_and_a_complete_dir(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "v1"}])
    ran = run_cli(prompts, "-m", "some-model", sim=sim)
    runner = CliRunner()
    assert runner.invoke(app, ["status", str(ran.out), "--prompts", str(prompts)]).exit_code == 0
    write_jsonl(prompts, [{"id": "a", "prompt": "v2"}])
    data = json.loads(runner.invoke(app, ["status", str(ran.out), "--prompts", str(prompts), "--json"]).stdout)
    assert data["prompts"]["changed"] == ["a"]


def test_status_of_a_dir_without_manifest_is_a_setup_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["status", str(tmp_path)])
    assert result.exit_code == 2
    assert "no manifest here" in result.stderr


def test_status_compares_a_templated_run_by_its_rendered_prompts(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    records = write_jsonl(tmp_path / "r.jsonl", [{"id": "a", "title": "Dune"}, {"id": "b", "title": "Emma"}])
    ran = run_cli(records, "--template-text", "Summarize {title}.", sim=sim)
    assert ran.exit_code == 0, ran.stderr
    assert ran.summary()["options"]["template_text"] == "Summarize {title}."
    runner = CliRunner()
    assert runner.invoke(app, ["status", str(ran.out), "--prompts", str(records)]).exit_code == 0
    write_jsonl(records, [{"id": "a", "title": "Dune"}, {"id": "b", "title": "Persuasion"}])
    data = json.loads(runner.invoke(app, ["status", str(ran.out), "--prompts", str(records), "--json"]).stdout)
    assert data["prompts"]["changed"] == ["b"]


def test_status_against_a_file_the_last_run_was_not_of_compares_by_id(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    plain = write_jsonl(tmp_path / "plain.jsonl", [{"id": "p1", "prompt": "plain"}])
    records = write_jsonl(tmp_path / "records.jsonl", [{"id": "r1", "title": "Dune"}])
    out = tmp_path / "out"
    assert run_cli(plain, sim=sim, out=out).exit_code == 0
    assert run_cli(records, "--template-text", "About {title}", sim=sim, out=out).exit_code == 0
    runner = CliRunner()
    for prompts in (plain, records):
        result = runner.invoke(app, ["status", str(out), "--prompts", str(prompts), "--json"])
        assert result.exit_code == 0, result.stdout + result.stderr
        data = json.loads(result.stdout)["prompts"]
        assert (data["done"], data["to_do"]) == (1, 0)
    assert (
        json.loads(runner.invoke(app, ["status", str(out), "--prompts", str(plain), "--json"]).stdout)["prompts"][
            "changes_checked"
        ]
        is False
    )
    text = runner.invoke(app, ["status", str(out), "--prompts", str(plain)]).stdout
    assert "compared by id only" in text


@pytest.mark.parametrize(
    ("prices", "line"),
    [
        (["--price-in", "1000000", "--price-out", "1000000"], "cost: $"),
        (["--price-in", "1000000"], "prompt cost: $"),
        (["--price-out", "1000000"], "output cost: up to $"),
    ],
)
def test_dry_run_prices_only_what_it_was_given_a_price_for(tmp_path: Path, prices: list[str], line: str) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "x", "params": {"max_tokens": 10}}])
    result = CliRunner().invoke(app, ["run", str(prompts), "--dry-run", *prices])
    assert result.exit_code == 0, result.stderr
    costs = [text for text in result.stdout.splitlines() if "cost" in text]
    assert len(costs) == 1 and costs[0].startswith(line), costs
    if "--price-out" not in prices:
        assert "give --price-out" in costs[0]


def test_n_choices_multiply_the_dry_runs_output_budget(tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "x", "params": {"n": 4, "max_tokens": 100}}])
    result = CliRunner().invoke(app, ["run", str(prompts), "--dry-run"])
    assert result.exit_code == 0
    total = next(line for line in result.stdout.splitlines() if line.startswith("total"))
    assert total.split()[-1] == "400"
