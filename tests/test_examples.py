"""The job-engine examples are valid for their engines (parsed where a parser exists) and their
command lines, run as the engine would run them, split the prompts file exactly over the shards."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from streamdump.cli import app
from streamdump.manifest import iter_entries, manifest_paths
from streamdump.simulator import Simulator

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PROMPTS = EXAMPLES / "prompts.jsonl"


def all_ids() -> list[str]:
    ids = []
    for number, line in enumerate(PROMPTS.read_text().splitlines(), start=1):
        if line.strip():
            ids.append(json.loads(line).get("id") or json.loads(line).get("custom_id") or f"line-{number:06d}")
    return ids


def assert_each_item_once(out: Path, n: int) -> None:
    assert [p.name for p in manifest_paths(out)] == [f"manifest.{k}-of-{n}.jsonl" for k in range(1, n + 1)]
    seen = Counter(entry["id"] for path in manifest_paths(out) for entry in iter_entries(path))
    assert seen == Counter(all_ids())
    results = Counter(
        json.loads(line)["custom_id"]
        for k in range(1, n + 1)
        for line in (out / f"results.{k}-of-{n}.jsonl").read_text().splitlines()
    )
    assert results == seen


def invoke(argv: list[str], sim: Simulator, env: dict[str, str] | None = None) -> None:
    assert argv[0] == "run"
    result = CliRunner().invoke(app, [*argv, "--base-url", sim.base_url], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr


def shard_n(text: str) -> int:
    match = re.search(r"--shard (?:auto|\$\{\{ matrix\.shard \}\})/([0-9]+)", text)
    assert match is not None, "no --shard auto/N or matrix shard in the example"
    return int(match[1])


# -- Kubernetes Indexed Job ---------------------------------------------------------------------------
def test_kubernetes_indexed_job(sim: Simulator, tmp_path: Path) -> None:
    job = yaml.safe_load((EXAMPLES / "kubernetes-indexed-job.yaml").read_text())
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    spec = job["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    n = shard_n(" ".join(args))
    assert spec["completionMode"] == "Indexed" and spec["completions"] == n
    assert pod["restartPolicy"] == "Never"  # required by podFailurePolicy and per-index backoff
    (rule,) = spec["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob" and rule["onExitCodes"]["values"] == [2]
    assert rule["onExitCodes"]["containerName"] == container["name"]
    assert container["command"] == ["streamdump"]
    (key,) = [e for e in container["env"] if e["name"] == "OPENAI_API_KEY"]
    assert "secretKeyRef" in key["valueFrom"]
    (mount,) = container["volumeMounts"]
    assert {v["name"] for v in pod["volumes"]} == {mount["name"]}
    out_dir = args[args.index("--out-dir") + 1]
    assert out_dir.startswith(mount["mountPath"] + "/") and args[1].startswith(mount["mountPath"] + "/")

    volume = tmp_path / "volume"
    volume.mkdir()
    shutil.copy(PROMPTS, volume / "prompts.jsonl")
    argv = [arg.replace(mount["mountPath"], str(volume)) for arg in args]
    for index in range(n):
        invoke(argv, sim, env={"JOB_COMPLETION_INDEX": str(index)})
    assert_each_item_once(volume / "out", n)


# -- SLURM job array ----------------------------------------------------------------------------------
def test_slurm_array_script(start_sim: Any, tmp_path: Path) -> None:
    script = EXAMPLES / "slurm-array.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and os.access(script, os.X_OK)
    array = re.search(r"^#SBATCH --array=([0-9]+)-([0-9]+)$", text, re.MULTILINE)
    assert array is not None
    low, high = int(array[1]), int(array[2])
    n = shard_n(text)
    assert high - low + 1 == n

    sim = start_sim()
    shutil.copy(PROMPTS, tmp_path / "prompts.jsonl")
    bin_dir = str(Path(sys.executable).parent)  # where the `streamdump` script is installed
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SLURM_", "STREAMDUMP_"))}
    tasks = []
    for task in range(low, high + 1):  # all at once, as SLURM would run them
        env = {
            **base,
            "PATH": bin_dir + os.pathsep + base.get("PATH", ""),
            "OPENAI_BASE_URL": sim.base_url,
            "SLURM_ARRAY_TASK_ID": str(task),
            "SLURM_ARRAY_TASK_MIN": str(low),
            "SLURM_ARRAY_TASK_MAX": str(high),
            "SLURM_ARRAY_TASK_COUNT": str(n),
        }
        tasks.append(
            subprocess.Popen(
                ["bash", str(script)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    for proc in tasks:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
    assert_each_item_once(tmp_path / "out", n)


# -- GitHub Actions matrix --------------------------------------------------------------------------------
def test_github_actions_matrix(sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workflow = yaml.safe_load((EXAMPLES / "github-actions-matrix.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "workflow_dispatch" in triggers
    shard_job, gather = workflow["jobs"]["shard"], workflow["jobs"]["gather"]
    (run_step,) = [s for s in shard_job["steps"] if "streamdump run" in s.get("run", "")]
    n = shard_n(run_step["run"])
    assert shard_job["strategy"]["matrix"]["shard"] == list(range(1, n + 1))
    assert shard_job["strategy"]["fail-fast"] is False
    assert run_step["env"]["OPENAI_API_KEY"] == "${{ secrets.OPENAI_API_KEY }}"
    (upload,) = [s for s in shard_job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["with"]["name"] == "out-${{ matrix.shard }}" and upload["if"] == "always()"
    assert gather["needs"] == "shard" and gather["if"] == "always()"
    (download,) = [s for s in gather["steps"] if s.get("uses", "").startswith("actions/download-artifact@")]
    assert download["with"] == {"pattern": "out-*", "path": "out", "merge-multiple": True}
    (cat_step,) = [s for s in gather["steps"] if s.get("run", "").startswith("cat ")]

    # Each shard on its own runner (its own disk), then the artifacts merged into one directory.
    merged = tmp_path / "gather" / "out"
    merged.mkdir(parents=True)
    for k in range(1, n + 1):
        runner = tmp_path / f"runner-{k}"
        runner.mkdir()
        shutil.copy(PROMPTS, runner / "prompts.jsonl")
        monkeypatch.chdir(runner)
        argv = shlex.split(run_step["run"].replace("${{ matrix.shard }}", str(k)))
        assert argv[0] == "streamdump"
        invoke(argv[1:], sim)
        for path in (runner / "out").iterdir():
            if path.name.startswith("."):
                continue  # upload-artifact@v4 leaves hidden files out
            assert not (merged / path.name).exists(), f"two shards wrote {path.name}"
            shutil.copy(path, merged / path.name)
    assert_each_item_once(merged, n)
    subprocess.run(["bash", "-c", cat_step["run"]], cwd=merged.parent, check=True)
    lines = (merged.parent / "results.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["custom_id"] for line in lines) == sorted(all_ids())
    # The merged directory is an out-dir like any other: resuming it sends nothing.
    before = len(sim.stats.requests)
    invoke(["run", str(PROMPTS), "-o", str(merged), "-q"], sim)
    assert len(sim.stats.requests) == before


# -- cron ------------------------------------------------------------------------------------------------
CRON_FIELD = re.compile(r"\*|[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*|\*/[0-9]+")


def test_crontab(sim: Simulator, tmp_path: Path) -> None:
    entries = [
        line for line in (EXAMPLES / "crontab").read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    commands = []
    for line in entries:
        fields = line.split(None, 5)
        assert len(fields) == 6, line
        assert all(CRON_FIELD.fullmatch(field) for field in fields[:5]), line
        command = fields[5]
        assert "%" not in command  # cron would turn it into a newline
        assert "OPENAI_API_KEY" not in line and "sk-" not in line  # the key stays out of the crontab
        commands.append(command)
    specs = [re.search(r"--shard ([0-9]+)/([0-9]+)", c) for c in commands]
    shards = sorted((int(m[1]), int(m[2])) for m in specs if m is not None)
    n = len(commands)
    assert shards == [(k, n) for k in range(1, n + 1)]  # one line per shard, covering 1..N

    shared = tmp_path / "shared"
    shared.mkdir()
    shutil.copy(PROMPTS, shared / "prompts.jsonl")
    for command in commands:
        subprocess.run(["sh", "-n", "-c", command], check=True)
        streamdump = command.split("&&", 1)[1].split(">>", 1)[0]
        argv = shlex.split(streamdump.replace("/shared", str(shared)))
        assert argv[0].endswith("/streamdump")
        invoke(argv[1:], sim)
    assert_each_item_once(shared / "out", n)


def test_the_readme_points_to_every_example_and_every_index_variable() -> None:
    from streamdump.shard import AUTO_VARIABLES

    readme = (EXAMPLES.parent / "README.md").read_text()
    for path in EXAMPLES.iterdir():
        if path.name != "prompts.jsonl":
            assert f"](examples/{path.name})" in readme, path.name
    for variable in AUTO_VARIABLES:
        assert f"`{variable}`" in readme
