"""The `run` contract end to end: real CLI, real AsyncOpenAI, real HTTP to the simulator."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamdump.cli import app
from streamdump.launch import public_url
from streamdump.simulator import Simulator

from support import LENGTH, Ran, expected_text, write_jsonl


def test_three_shapes_send_the_expected_requests(sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path) -> None:
    prompts = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"id": "one", "prompt": "first", "system": "sys", "params": {"temperature": 0.2, "seed": 1}},
            {"id": "two", "messages": [{"role": "user", "content": "second"}], "model": "other-model"},
            {
                "custom_id": "three",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "batch-model", "messages": [{"role": "user", "content": "third"}], "max_tokens": 50},
            },
        ],
    )
    ran = run_cli(prompts, "-m", "default-model", "--max-tokens", "40", sim=sim)
    assert ran.exit_code == 0, ran.stderr
    bodies = {r.prompt: r.body for r in sim.stats.requests}
    assert bodies["first"] == {
        "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "first"}],
        "model": "default-model",
        "temperature": 0.2,
        "seed": 1,
        "max_tokens": 40,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert bodies["second"]["model"] == "other-model"
    assert bodies["second"]["max_tokens"] == 40
    assert bodies["third"]["model"] == "batch-model"
    assert bodies["third"]["max_tokens"] == 50
    for item_id, prompt in (("one", "first"), ("two", "second"), ("three", "third")):
        assert (ran.out / f"{item_id}.txt").read_text() == expected_text(prompt)
    manifest = ran.by_id()
    assert set(manifest) == {"one", "two", "three"}
    entry = manifest["one"]
    assert entry["status"] == "ok" and entry["finish_reason"] == "stop" and entry["attempts"] == 1
    assert entry["usage"] == {"prompt_tokens": 2, "completion_tokens": 12, "source": "server"}
    assert entry["file"] == "one.txt" and entry["ttft_s"] is not None and entry["duration_s"] >= 0
    assert len(entry["request_hash"]) == 32
    summary = ran.summary()
    assert summary["statuses"] == {"ok": 3}
    assert summary["tokens"]["completion"] == 36
    assert "api_key" not in json.dumps(summary["options"]).replace("api_key_env", "")


def test_concurrency_bounds_open_streams(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(tokens_per_second=200, length=6)
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": f"i{n}", "prompt": f"prompt {n}"} for n in range(24)])
    ran = run_cli(prompts, "-c", "3", sim=sim)
    assert ran.exit_code == 0, ran.stderr
    assert len(sim.stats.requests) == 24
    assert sim.stats.peak_streams == 3
    assert sim.stats.peak_connections <= 3


def test_part_file_grows_while_streaming_and_txt_appears_only_at_the_end(
    start_sim: Callable[..., Simulator], tmp_path: Path
) -> None:
    sim = start_sim(tokens_per_second=20, length=16)
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "slow", "prompt": "take your time"}])
    out = tmp_path / "out"
    part, final = out / "slow.txt.part", out / "slow.txt"
    sizes: list[int] = []
    seen_final_while_part: list[bool] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if part.exists():
                with contextlib.suppress(FileNotFoundError):  # renamed between the two calls
                    sizes.append(part.stat().st_size)
                seen_final_while_part.append(final.exists())
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = CliRunner().invoke(app, ["run", str(prompts), "-o", str(out), "-q", "--base-url", sim.base_url])
    finally:
        done.set()
        watcher.join()
    assert result.exit_code == 0, result.stderr
    growth = sorted(set(sizes))
    assert len(growth) >= 5, f"part file sizes seen: {growth}"
    assert not any(seen_final_while_part)
    assert final.read_text() == expected_text("take your time", 16)
    assert not part.exists()


def test_hostile_ids_stay_inside_the_out_dir_and_distinct(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    hostile = [
        "../escape",
        "/etc/passwd",
        "a/b",
        "a\\b",
        "nul\x00byte",
        "x" * 1000,
        ".hidden",
        "..",
        "CON",
        "Poem",
        "poem",
        "POEM",
        "a.error",
        "émoji 🙂",
        "a b",
        "a_b",
    ]
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": i, "prompt": f"prompt {n}"} for n, i in enumerate(hostile)])
    out = tmp_path / "deep" / "out"
    ran = run_cli(prompts, sim=sim, out=out)
    assert ran.exit_code == 0, ran.stderr
    manifest = ran.by_id()
    assert set(manifest) == set(hostile)
    files = [manifest[i]["file"] for i in hostile]
    assert len({f.casefold() for f in files}) == len(hostile)
    for n, item_id in enumerate(hostile):
        path = out / manifest[item_id]["file"]
        assert path.resolve().parent == out.resolve()
        assert path.read_text() == expected_text(f"prompt {n}")
    assert {p.name for p in tmp_path.iterdir()} == {"p.jsonl", "deep"}
    assert {p.name for p in (tmp_path / "deep").iterdir()} == {"out"}
    # Ids differing only in case are all hashed, so their names do not depend on line order.
    assert all("~" in manifest[i]["file"] for i in ("Poem", "poem", "POEM"))
    assert manifest["a_b"]["file"] == "a_b.txt"


def test_multibyte_character_split_across_network_chunks_is_intact(
    start_sim: Callable[..., Simulator], run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    sim = start_sim(faults=["split-utf8"], length=40)
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "u", "prompt": "unicode please"}])
    ran = run_cli(prompts, sim=sim)
    assert ran.exit_code == 0, ran.stderr
    text = (ran.out / "u.txt").read_text(encoding="utf-8")
    assert text == expected_text("unicode please", 40)
    assert any(ord(ch) > 127 for ch in text), "the test prompt must produce multi-byte characters"


def test_invalid_input_reports_every_line_sends_nothing_writes_nothing(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    prompts = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            {"id": "ok", "prompt": "fine"},
            "{broken",
            "",
            '"just a string"',
            {"id": "ok", "prompt": "duplicate"},
            {"id": "m", "messages": [{"role": "user"}]},
            {"custom_id": "x", "method": "POST", "url": "/v1/embeddings", "body": {}},
        ],
    )
    out = tmp_path / "out"
    ran = run_cli(prompts, sim=sim, out=out)
    assert ran.exit_code == 2
    lines = [line for line in ran.stderr.splitlines() if line]
    assert f"{prompts}:2: invalid JSON" in lines[0].replace("streamdump: ", "")
    for number, text in (
        (4, "expected a JSON object"),
        (5, "duplicate id 'ok' (first on line 1)"),
        (6, 'messages[0] has no "content"'),
        (7, "unknown Batch API"),
    ):
        assert any(f"{prompts}:{number}: {text}" in line for line in lines), (number, ran.stderr)
    assert not any(":3:" in line for line in lines)  # the blank line is skipped
    assert sim.stats.requests == []
    assert not out.exists()


def test_invalid_utf8_line_is_reported(sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_bytes(b'{"prompt": "ok"}\n{"prompt": "\xff"}\n')
    ran = run_cli(prompts, sim=sim)
    assert ran.exit_code == 2
    assert f"{prompts}:2: not valid UTF-8" in ran.stderr
    assert sim.stats.requests == []


def test_missing_prompts_file_is_a_setup_error(sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path) -> None:
    ran = run_cli(tmp_path / "nope.jsonl", sim=sim)
    assert ran.exit_code == 2
    assert "nope.jsonl: cannot read" in ran.stderr


def test_stdin_input(sim: Simulator, run_cli: Callable[..., Ran]) -> None:
    lines = "".join(json.dumps({"id": f"s{n}", "prompt": f"stdin {n}"}) + "\n" for n in range(3))
    ran = run_cli("-", sim=sim, input=lines)
    assert ran.exit_code == 0, ran.stderr
    assert sorted(ran.by_id()) == ["s0", "s1", "s2"]
    assert (ran.out / "s1.txt").read_text() == expected_text("stdin 1")


def test_stdin_errors_name_stdin(sim: Simulator, run_cli: Callable[..., Ran]) -> None:
    ran = run_cli("-", sim=sim, input='{"prompt": "x"}\nnope\n')
    assert ran.exit_code == 2
    assert "<stdin>:2: invalid JSON" in ran.stderr
    assert sim.stats.requests == []


def test_no_key_no_base_url_no_simulate_is_a_clear_setup_error(run_cli: Callable[..., Ran], tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "x"}])
    ran = run_cli(prompts)
    assert ran.exit_code == 2
    assert "no API key: set OPENAI_API_KEY" in ran.stderr
    assert not ran.out.exists()


def test_key_from_named_variable_is_sent_but_never_written(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    secret = "sk-test-secret-value-123"
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "k", "prompt": "x"}])
    ran = run_cli(prompts, "--api-key-env", "MY_KEY", sim=sim, env={"MY_KEY": secret})
    assert ran.exit_code == 0, ran.stderr
    files = [path for path in ran.out.rglob("*") if path.is_file()]  # the lock files too
    assert len(files) >= 4
    for path in files:
        assert secret not in path.read_text(errors="replace")
    assert secret not in ran.stderr + ran.stdout


def test_unwritable_out_dir_is_a_setup_error(sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "x"}])
    ran = run_cli(prompts, sim=sim, out=blocker / "out")
    assert ran.exit_code == 2
    assert "cannot write the out-dir" in ran.stderr
    assert sim.stats.requests == []


def test_simulate_flag_runs_the_builtin_simulator(run_cli: Callable[..., Ran], tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "sim", "prompt": "hello"}])
    ran = run_cli(prompts, "--simulate")
    assert ran.exit_code == 0, ran.stderr
    assert (ran.out / "sim.txt").read_text().endswith(".")
    assert ran.summary()["options"]["base_url"] == "simulator"


def test_summary_paragraph_ends_every_run(sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "a"}, {"prompt": "b"}])
    ran = run_cli(prompts, sim=sim)
    assert ran.stderr.strip().splitlines()[-1].startswith("streamdump: 2 items: 2 ok;")


def test_rerun_of_finished_run_sends_nothing(sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": f"r{n}", "prompt": f"again {n}"} for n in range(5)])
    assert run_cli(prompts, sim=sim).exit_code == 0
    assert len(sim.stats.requests) == 5
    again = run_cli(prompts, sim=sim)
    assert again.exit_code == 0, again.stderr
    assert len(sim.stats.requests) == 5
    assert again.summary()["this_run"]["skipped_already_done"] == 5


@pytest.mark.parametrize("with_progress", [True, False])
def test_plain_progress_lines_when_stderr_is_not_a_terminal(
    sim: Simulator, tmp_path: Path, with_progress: bool
) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"prompt": f"x{n}"} for n in range(3)])
    args = ["run", str(prompts), "-o", str(tmp_path / "out"), "--base-url", sim.base_url]
    if not with_progress:
        args.append("--quiet")
    result = CliRunner().invoke(app, [*args, "--progress-interval", "0"])
    assert result.exit_code == 0, result.stderr
    progress_lines = [line for line in result.stderr.splitlines() if " done, " in line]
    assert bool(progress_lines) is with_progress


def test_a_rerun_that_sends_nothing_still_summarizes_the_whole_input(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "a"}, {"id": "b", "prompt": "b"}])
    first = run_cli(prompts, sim=sim).summary()
    again = run_cli(prompts, sim=sim).summary()
    assert again["statuses"] == {"ok": 2} and again["not_started"] == 0
    assert again["tokens"] == first["tokens"] and again["tokens"]["completion"] == 2 * LENGTH
    assert again["finish_reasons"] == {"stop": 2}
    mine = again["this_run"]
    assert mine["skipped_already_done"] == 2 and mine["statuses"] == {}
    assert mine["tokens"] == {"prompt": 0, "completion": 0}  # what this run spent


def test_json_errors_point_into_the_line(sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", ['{"id":"b","prompt":"hello two"'])
    ran = run_cli(prompts, sim=sim)
    assert ran.exit_code == 2
    assert f"{prompts}:1: invalid JSON: Expecting ',' delimiter (column 31)" in ran.stderr


def test_credentials_in_the_base_url_never_reach_the_summary(
    sim: Simulator, run_cli: Callable[..., Ran], tmp_path: Path
) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "a"}])
    url = sim.base_url.replace("http://", "http://user:hunter2@")
    result = CliRunner().invoke(app, ["run", str(prompts), "-o", str(tmp_path / "out"), "-q", "--base-url", url])
    assert result.exit_code == 0, result.stderr
    summary = (tmp_path / "out" / "summary.json").read_text()
    assert "hunter2" not in summary
    assert json.loads(summary)["options"]["base_url"] == sim.base_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (None, None),
        ("http://localhost:8000/v1", "http://localhost:8000/v1"),
        ("https://user:pw@host/v1", "https://host/v1"),
        ("https://host/openai?api-key=sekrit&x=1", "https://host/openai"),
        ("https://tok@host:8443/v1#frag", "https://host:8443/v1"),
    ],
)
def test_public_url_drops_credentials_and_queries(url: str | None, shown: str | None) -> None:
    assert public_url(url) == shown
