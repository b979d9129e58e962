"""``streamdump simulate``: the built-in OpenAI-compatible server, until interrupted (see ``simulator``)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer


def _fail_setup(message: str) -> None:
    typer.echo(f"streamdump: {message}", err=True)
    raise typer.Exit(2)


def simulate(
    port: Annotated[int, typer.Option("--port", "-p", help="Port to listen on (0: any free port).")] = 8000,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    tokens_per_second: Annotated[
        float,
        typer.Option("--tokens-per-second", min=0.0, help="Pieces per second per stream (0: as fast as possible)."),
    ] = 50.0,
    ttft: Annotated[float, typer.Option("--ttft", min=0.0, help="Seconds before the first piece.")] = 0.2,
    length: Annotated[int, typer.Option("--length", min=0, help="Pieces (words) per response.")] = 40,
    no_usage: Annotated[
        bool, typer.Option("--no-usage", help="Never send a usage chunk (as many local servers).")
    ] = False,
    reject_stream_options: Annotated[
        bool, typer.Option("--reject-stream-options", help="Answer 400 to requests that carry stream_options.")
    ] = False,
    limit_requests: Annotated[
        Optional[int],
        typer.Option(
            "--limit-requests", min=1, help="Allow N requests per window; send x-ratelimit-* headers and 429s."
        ),
    ] = None,
    limit_window: Annotated[float, typer.Option("--limit-window", min=0.01, help="The window, seconds.")] = 60.0,
    reasoning: Annotated[
        int, typer.Option("--reasoning", min=0, help="Pieces of reasoning streamed before each answer (0: none).")
    ] = 0,
    reasoning_field: Annotated[
        str,
        typer.Option(
            "--reasoning-field", help="Delta field for reasoning: reasoning_content (DeepSeek, SGLang) or reasoning."
        ),
    ] = "reasoning_content",
    served: Annotated[
        Optional[list[str]],
        typer.Option(
            "--model", metavar="NAME", help="Serve only this model (repeatable); others get 404 model_not_found."
        ),
    ] = None,
    zero_usage: Annotated[bool, typer.Option("--zero-usage", help="Report usage with every count 0.")] = False,
    responses_data_only: Annotated[
        bool,
        typer.Option(
            "--responses-data-only", help="Responses API streams as LiteLLM and vLLM send them: data only, [DONE]."
        ),
    ] = False,
    responses_reasoning: Annotated[
        str, typer.Option("--responses-reasoning", help="Responses API reasoning events: summary (OpenAI) or text.")
    ] = "summary",
    fault: Annotated[
        Optional[list[str]],
        typer.Option(
            "--fault",
            metavar="RULE",
            help="Inject a fault, e.g. 'drop,after=3,times=1' or '429,retry_after=2' (repeatable; see the README).",
        ),
    ] = None,
    fast: Annotated[
        bool,
        typer.Option("--fast", help="One ticker feeds every open stream: for load tests of 1,000+ streams; no faults."),
    ] = False,
    timeline: Annotated[
        bool, typer.Option("--timeline", help="With --fast: record when each piece is sent (GET /_sim/timeline).")
    ] = False,
    batch_seconds: Annotated[
        float, typer.Option("--batch-seconds", min=0.0, help="How long a Batch API batch stays in progress.")
    ] = 0.0,
    batch_fault: Annotated[
        Optional[list[str]],
        typer.Option(
            "--batch-fault",
            metavar="RULE",
            help="Make batches fail: 'expire,after=2', 'token-limit,times=1', 'create-drop' (repeatable).",
        ),
    ] = None,
) -> None:
    """Run the built-in OpenAI-compatible streaming simulator until interrupted."""
    import asyncio

    from .simulator import SimConfig, Simulator, parse_fault
    from .simulator.batch_faults import parse_batch_fault
    from .simulator.fast import FastSimulator
    from .simulator.replies import REASONING_FIELDS

    try:
        faults = tuple(parse_fault(spec) for spec in fault or [])
    except ValueError as exc:
        _fail_setup(f"--fault: {exc}")
        return
    try:
        batch_faults = tuple(parse_batch_fault(spec) for spec in batch_fault or [])
    except ValueError as exc:
        _fail_setup(f"--batch-fault: {exc}")
        return
    if reasoning_field not in REASONING_FIELDS:
        _fail_setup(f"--reasoning-field must be one of {', '.join(REASONING_FIELDS)}, not {reasoning_field!r}")
    if responses_reasoning not in ("summary", "text"):
        _fail_setup(f"--responses-reasoning must be summary or text, not {responses_reasoning!r}")
    if fast and faults:
        _fail_setup("--fast injects no faults; drop --fault or --fast")
    config = SimConfig(
        tokens_per_second=tokens_per_second,
        ttft=ttft,
        length=length,
        faults=faults,
        usage=not no_usage,
        reject_stream_options=reject_stream_options,
        rpm_limit=limit_requests,
        rpm_window=limit_window,
        reasoning=reasoning,
        reasoning_field=reasoning_field,
        models=tuple(served or ()),
        zero_usage=zero_usage,
        responses_data_only=responses_data_only,
        responses_reasoning=responses_reasoning,
        batch_seconds=batch_seconds,
        batch_faults=batch_faults,
    )

    async def serve() -> None:
        sim: Simulator | FastSimulator = FastSimulator(config, timeline=timeline) if fast else Simulator(config)
        await sim.start(host=host, port=port)
        typer.echo(f"streamdump simulator on http://{host}:{sim.port}/v1 (Ctrl-C to stop)", err=True)
        await sim.serve_forever()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        _fail_setup(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
