"""Shared fixtures: a real simulator on 127.0.0.1 and the real CLI."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from streamdump.cli import app
from streamdump.simulator import SimConfig, Simulator, SimulatorThread, parse_fault
from streamdump.transport import TRANSPORTS

from support import Ran


@pytest.fixture(autouse=True)
def _no_ambient_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's key or endpoint, nor a job engine's shard index."""
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "STREAMDUMP_MODEL",
        "STREAMDUMP_SHARD",
        "STREAMDUMP_HTTP",
        "JOB_COMPLETION_INDEX",
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_STEP",
        "SLURM_ARRAY_TASK_COUNT",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=TRANSPORTS)
def each_transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once per HTTP transport (``--http``), through the option's environment variable,
    which in-process CLI runs and subprocesses alike read."""
    http = str(request.param)
    monkeypatch.setenv("STREAMDUMP_HTTP", http)
    return http


@pytest.fixture
def start_sim() -> Iterator[Callable[..., Simulator]]:
    """start_sim(faults=[...], **config) -> a running Simulator (stopped after the test)."""
    threads: list[SimulatorThread] = []

    def start(faults: list[str] | tuple[str, ...] = (), **config: Any) -> Simulator:
        base = {"tokens_per_second": 0, "ttft": 0, "length": 12, **config}
        thread = SimulatorThread(SimConfig(faults=tuple(parse_fault(f) for f in faults), **base))
        threads.append(thread)
        return thread.__enter__()

    yield start
    for thread in threads:
        thread.__exit__(None, None, None)
    for thread in threads:
        assert thread.sim.stats.errors == [], "the simulator crashed while serving"


@pytest.fixture
def sim(start_sim: Callable[..., Simulator]) -> Simulator:
    return start_sim()


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., Ran]:
    """run_cli(prompts_path_or_dash, *args, sim=..., input=..., out=...) through the real CLI."""
    runner = CliRunner()

    def invoke(
        prompts: str | Path,
        *args: str,
        sim: Simulator | None = None,
        input: str | None = None,
        out: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> Ran:
        out = out or tmp_path / "out"
        argv = ["run", str(prompts), "-o", str(out), "--quiet", *args]
        if sim is not None:
            argv += ["--base-url", sim.base_url]
        result = runner.invoke(app, argv, input=input, env=env, catch_exceptions=False)
        return Ran(result.exit_code, result.stdout, result.stderr, out)

    return invoke
