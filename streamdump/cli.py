"""The command line: parse options, call the library, map errors to exit codes.

Exit codes: 0 every item ok; 1 the run went ahead and some item is not ok (or was left undone);
2 the run could not start (nothing sent); 130/143 stopped by SIGINT/SIGTERM.
Heavy imports (openai, tiktoken) happen inside the commands, so ``--help`` stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import _constants as C
from .batchcli import batch_app
from .errors import NothingToDo, SetupError
from .helptext import CHECK_HELP, RUN_HELP, Panel

app = typer.Typer(
    name="streamdump",
    help="Bulk LLM generation: a JSONL of prompts in, one streamed file per prompt out.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",  # panels; bracketed text in help must be escaped (see helptext)
    context_settings={"help_option_names": ["-h", "--help"]},
)

app.add_typer(batch_app, name="batch")  # streamdump batch submit|status|collect|cancel (see batchcli)

EXIT_OK, EXIT_NOT_ALL_OK, EXIT_SETUP = 0, 1, 2


def _fail_setup(message: str) -> None:
    typer.echo(f"streamdump: {message}", err=True)
    raise typer.Exit(EXIT_SETUP)


def _show_version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"streamdump {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _top(
    version: Annotated[
        bool,
        typer.Option(
            "--version", metavar="", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Bulk LLM generation: a JSONL of prompts in, one streamed file per prompt out."""


@app.command(help=RUN_HELP)
def run(
    prompts: Annotated[
        str,
        typer.Argument(metavar="PROMPTS", help="JSONL file of prompts, or - for standard input."),
    ],
    template: Annotated[
        Optional[str],
        typer.Option(
            "--template",
            metavar="FILE",
            help="Render each input record into the prompt: {field}, {a.b}.",
            rich_help_panel=Panel.INPUT,
        ),
    ] = None,
    template_text: Annotated[
        Optional[str],
        typer.Option("--template-text", metavar="TEXT", help="--template given as text.", rich_help_panel=Panel.INPUT),
    ] = None,
    system_template: Annotated[
        Optional[str],
        typer.Option(
            "--system-template",
            metavar="FILE",
            help="Render each record into the system message.",
            rich_help_panel=Panel.INPUT,
        ),
    ] = None,
    system_template_text: Annotated[
        Optional[str],
        typer.Option(
            "--system-template-text",
            metavar="TEXT",
            help="--system-template given as text.",
            rich_help_panel=Panel.INPUT,
        ),
    ] = None,
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out-dir",
            "-o",
            help="Output directory (created if missing).",
            metavar="DIR",
            rich_help_panel=Panel.OUTPUT,
        ),
    ] = Path(C.DEFAULT_OUT_DIR),
    model: Annotated[
        Optional[str],
        typer.Option(
            "--model",
            "-m",
            envvar="STREAMDUMP_MODEL",
            help=f"Model for lines that name none \\[default: {C.DEFAULT_MODEL}].",
            metavar="NAME",
            rich_help_panel=Panel.REQUEST,
        ),
    ] = None,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            "-c",
            min=1,
            help="Most streams open at any moment.",
            metavar="N",
            rich_help_panel=Panel.LIMITS,
        ),
    ] = C.DEFAULT_CONCURRENCY,
    base_url: Annotated[
        Optional[str],
        typer.Option(
            "--base-url",
            envvar="OPENAI_BASE_URL",
            help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 \\[default: OpenAI].",
            metavar="URL",
            rich_help_panel=Panel.ENDPOINT,
        ),
    ] = None,
    api_key_env: Annotated[
        str,
        typer.Option(
            "--api-key-env",
            help="Environment variable holding the API key.",
            metavar="NAME",
            rich_help_panel=Panel.ENDPOINT,
        ),
    ] = "OPENAI_API_KEY",
    system: Annotated[
        Optional[str],
        typer.Option(
            "--system", help="System message for lines without one.", metavar="TEXT", rich_help_panel=Panel.REQUEST
        ),
    ] = None,
    temperature: Annotated[
        Optional[float],
        typer.Option(
            "--temperature", help="Temperature for lines that set none.", metavar="T", rich_help_panel=Panel.REQUEST
        ),
    ] = None,
    max_tokens: Annotated[
        Optional[int],
        typer.Option(
            "--max-tokens",
            min=1,
            help="Output limit for lines that set none (max_tokens; max_output_tokens for --api responses).",
            metavar="N",
            rich_help_panel=Panel.REQUEST,
        ),
    ] = None,
    api: Annotated[
        str,
        typer.Option(
            "--api",
            envvar="STREAMDUMP_API",
            metavar="chat|responses|completions",
            help="Wire format: chat completions, the Responses API, or text completions "
            "(a Batch API line goes by its own url).",
            rich_help_panel=Panel.ENDPOINT,
        ),
    ] = "chat",
    simulate: Annotated[
        bool,
        typer.Option(
            "--simulate",
            help="Run against the built-in simulator (no key, no internet).",
            metavar="",
            rich_help_panel=Panel.ENDPOINT,
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Also print every retry (a terminal counts them on the bar).",
            metavar="",
            rich_help_panel=Panel.PROGRESS,
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="Print only errors and the final summary.", metavar="", rich_help_panel=Panel.PROGRESS
        ),
    ] = False,
    max_retries: Annotated[
        int,
        typer.Option(
            "--max-retries", min=0, help="Retries after the first attempt.", metavar="N", rich_help_panel=Panel.RETRIES
        ),
    ] = C.MAX_RETRIES,
    backoff_base: Annotated[
        float,
        typer.Option(
            "--backoff-base", min=0.0, help="Backoff base delay, seconds.", metavar="S", rich_help_panel=Panel.RETRIES
        ),
    ] = C.BACKOFF_BASE,
    backoff_max: Annotated[
        float,
        typer.Option(
            "--backoff-max", min=0.0, help="Longest backoff delay, seconds.", metavar="S", rich_help_panel=Panel.RETRIES
        ),
    ] = C.BACKOFF_MAX,
    max_retry_after: Annotated[
        float,
        typer.Option(
            "--max-retry-after",
            min=0.0,
            help="Cap on a server's Retry-After, seconds.",
            metavar="S",
            rich_help_panel=Panel.RETRIES,
        ),
    ] = C.MAX_RETRY_AFTER,
    idle_timeout: Annotated[
        float,
        typer.Option(
            "--idle-timeout",
            min=0.01,
            help="Abandon and retry an attempt with no data for this long, seconds.",
            metavar="S",
            rich_help_panel=Panel.RETRIES,
        ),
    ] = C.IDLE_TIMEOUT,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=0.01,
            help="Longest one attempt may take, seconds.",
            metavar="S",
            rich_help_panel=Panel.RETRIES,
        ),
    ] = C.ATTEMPT_TIMEOUT,
    max_failures: Annotated[
        Optional[int],
        typer.Option(
            "--max-failures",
            min=1,
            help="Stop the run after this many failed items.",
            metavar="N",
            rich_help_panel=Panel.RETRIES,
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Redo every item, even those already done.", metavar="", rich_help_panel=Panel.OUTPUT
        ),
    ] = False,
    rpm: Annotated[
        Optional[float],
        typer.Option(
            "--rpm", min=0.001, help="Requests per minute, spread evenly.", metavar="N", rich_help_panel=Panel.LIMITS
        ),
    ] = None,
    tpm: Annotated[
        Optional[float],
        typer.Option(
            "--tpm",
            min=1.0,
            help="Tokens per minute (prompt + max_tokens reserved per request).",
            metavar="N",
            rich_help_panel=Panel.LIMITS,
        ),
    ] = None,
    expected_output_tokens: Annotated[
        int,
        typer.Option(
            "--expected-output-tokens",
            min=1,
            help="Output tokens assumed for lines without max_tokens.",
            metavar="N",
            rich_help_panel=Panel.LIMITS,
        ),
    ] = C.EXPECTED_OUTPUT_TOKENS,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Check the input and price the job; send nothing, write nothing.",
            metavar="",
            rich_help_panel=Panel.LIMITS,
        ),
    ] = False,
    price_in: Annotated[
        Optional[float],
        typer.Option(
            "--price-in",
            min=0.0,
            help="USD per million prompt tokens (--dry-run, --max-cost).",
            metavar="USD",
            rich_help_panel=Panel.LIMITS,
        ),
    ] = None,
    price_out: Annotated[
        Optional[float],
        typer.Option(
            "--price-out",
            min=0.0,
            help="USD per million output tokens (--dry-run, --max-cost).",
            metavar="USD",
            rich_help_panel=Panel.LIMITS,
        ),
    ] = None,
    batch: Annotated[
        bool,
        typer.Option(
            "--batch",
            help="With --dry-run: price the job at the Batch API's discount (half).",
            metavar="",
            rich_help_panel=Panel.LIMITS,
        ),
    ] = False,
    price_cached_in: Annotated[
        Optional[float],
        typer.Option(
            "--price-cached-in",
            min=0.0,
            help="USD per million cached prompt tokens, when the server reports them \\[default: --price-in].",
            metavar="USD",
            rich_help_panel=Panel.LIMITS,
        ),
    ] = None,
    max_cost: Annotated[
        Optional[float],
        typer.Option(
            "--max-cost",
            min=0.0,
            metavar="USD",
            help="Spend at most this much in this run (needs --price-in and --price-out); then stop early.",
            rich_help_panel=Panel.LIMITS,
        ),
    ] = None,
    json_schema: Annotated[
        Optional[Path],
        typer.Option(
            "--json-schema",
            metavar="FILE",
            help="Ask for answers valid against this JSON Schema, check each one, redo invalid ones.",
            rich_help_panel=Panel.REQUEST,
        ),
    ] = None,
    invalid_retries: Annotated[
        int,
        typer.Option(
            "--invalid-retries",
            min=0,
            help="Redo an answer that is not valid against its schema this many times.",
            metavar="N",
            rich_help_panel=Panel.RETRIES,
        ),
    ] = C.INVALID_RETRIES,
    progress_interval: Annotated[
        float,
        typer.Option(
            "--progress-interval",
            min=0.0,
            help="Seconds between plain progress lines when stderr is not a terminal.",
            metavar="S",
            rich_help_panel=Panel.PROGRESS,
        ),
    ] = C.PROGRESS_INTERVAL,
    ext: Annotated[
        Optional[str],
        typer.Option(
            "--ext",
            help="Extension of the answer files, e.g. md \\[default: txt; json with --json-schema].",
            metavar="EXT",
            rich_help_panel=Panel.OUTPUT,
        ),
    ] = None,
    no_reasoning: Annotated[
        bool,
        typer.Option(
            "--no-reasoning",
            help="Drop reasoning text instead of writing <name>.reasoning.txt.",
            metavar="",
            rich_help_panel=Panel.OUTPUT,
        ),
    ] = False,
    shard: Annotated[
        Optional[str],
        typer.Option(
            "--shard",
            envvar="STREAMDUMP_SHARD",
            metavar="K/N",
            help="Take only shard K of N (by a hash of the id); auto/N reads K from "
            "JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID.",
            rich_help_panel=Panel.SCALE_OUT,
        ),
    ] = None,
    wait_lock: Annotated[
        bool,
        typer.Option(
            "--wait-lock",
            help="Wait for another run writing the same files in the out-dir, not refuse.",
            metavar="",
            rich_help_panel=Panel.SCALE_OUT,
        ),
    ] = False,
    results_jsonl: Annotated[
        Optional[Path],
        typer.Option(
            "--results-jsonl",
            metavar="FILE",
            help="Also write one line per finished item in the OpenAI Batch API output format.",
            rich_help_panel=Panel.OUTPUT,
        ),
    ] = None,
    http: Annotated[
        str,
        typer.Option(
            "--http",
            envvar="STREAMDUMP_HTTP",
            metavar="aiohttp|httpx",
            help="HTTP transport under the openai client: aiohttp (faster) or httpx.",
        ),
    ] = C.DEFAULT_HTTP,
    processes: Annotated[
        str,
        typer.Option(
            "--processes",
            metavar="N|auto",
            help="Split the run across N worker processes (auto: one per CPU this process may use).",
        ),
    ] = "1",
) -> None:
    from .attempt import AttemptSettings
    from .cost import run_prices
    from .jobs import Defaults, defaults_options
    from .launch import describe, exit_code, public_url, resolve_endpoint, run_command
    from .layout import check_ext
    from .results import check_results_path
    from .retry import RetryPolicy
    from .runstate import RunSettings
    from .schema import load_schema, schema_note
    from .shard import ShardError, parse_shard, tagged
    from .templates import templates_from_options
    from .transport import TRANSPORTS
    from .wire import NAMES as API_NAMES

    if http not in TRANSPORTS:
        _fail_setup(f"--http must be one of {', '.join(TRANSPORTS)}, not {http!r}")
    from .processes import parse_processes

    try:
        workers = min(parse_processes(processes), concurrency)  # more would have nothing to do
    except ValueError as exc:
        _fail_setup(f"--processes {exc}")
        return
    try:
        answer_schema = load_schema(json_schema) if json_schema is not None else None
        prices = run_prices(max_cost, price_in=price_in, price_out=price_out, price_cached_in=price_cached_in)
        ext = check_ext(ext if ext is not None else "json" if answer_schema is not None else "txt")
        prompt_template, system_tpl = templates_from_options(
            template=template,
            template_text=template_text,
            system_template=system_template,
            system_template_text=system_template_text,
            system=system,
        )
    except (ValueError, SetupError) as exc:
        _fail_setup(str(exc))
        return
    try:
        chosen = parse_shard(shard, os.environ) if shard is not None else None
    except ShardError as exc:
        _fail_setup(f"--shard {exc}")
        return
    results = tagged(results_jsonl, chosen) if results_jsonl is not None else None

    if api not in API_NAMES:
        _fail_setup(f"--api must be one of {', '.join(API_NAMES)}, not {api!r}")
    params: dict[str, object] = {}
    if temperature is not None:
        params["temperature"] = temperature
    asks = api != "completions"  # text completions send no schema: there is no strict mode to miss
    if answer_schema is not None and asks and not quiet and not dry_run and (note := schema_note(answer_schema)):
        typer.echo(note, err=True)
    defaults = Defaults(
        model=model or C.DEFAULT_MODEL,
        system=system,
        params=params,
        template=prompt_template,
        system_template=system_tpl,
        api=api,
        max_tokens=max_tokens,
        answer_schema=answer_schema,
    )
    options = {
        "prompts": prompts,
        "out_dir": str(out_dir),
        **defaults_options(defaults),
        "concurrency": concurrency,
        "base_url": "simulator" if simulate else public_url(base_url),
        "api_key_env": api_key_env,
        "max_retries": max_retries,
        "backoff_base": backoff_base,
        "backoff_max": backoff_max,
        "max_retry_after": max_retry_after,
        "idle_timeout": idle_timeout,
        "timeout": timeout,
        "max_failures": max_failures,
        "force": force,
        "rpm": rpm,
        "tpm": tpm,
        "expected_output_tokens": expected_output_tokens,
        "ext": ext,
        "no_reasoning": no_reasoning,
        "template": template,
        "system_template": system_template,
        "shard": None if chosen is None else str(chosen),
        "results_jsonl": None if results is None else str(results),
        "json_schema": None if json_schema is None else str(json_schema),
        "invalid_retries": invalid_retries,
        "max_cost": max_cost,
        "price_in": price_in,
        "price_out": price_out,
        "price_cached_in": price_cached_in,
        "http": http,
        "processes": workers,
    }
    if batch and not dry_run:
        _fail_setup("--batch prices a --dry-run; to send a job through the Batch API, use `streamdump batch submit`")
    if dry_run:
        from .dryrun import dry_run as run_dry
        from .dryrun import format_report

        try:
            report = run_dry(prompts, defaults, expected_output_tokens=expected_output_tokens, shard=chosen)
        except SetupError as exc:
            _fail_setup(str(exc))
            return
        typer.echo(format_report(report, price_in=price_in, price_out=price_out, rpm=rpm, tpm=tpm, batch=batch))
        raise typer.Exit(EXIT_OK)
    settings = RunSettings(
        out_dir=out_dir,
        concurrency=concurrency,
        policy=RetryPolicy(
            max_retries=max_retries, backoff_base=backoff_base, backoff_max=backoff_max, max_retry_after=max_retry_after
        ),
        attempt=AttemptSettings(idle_timeout=idle_timeout, attempt_timeout=timeout, keep_reasoning=not no_reasoning),
        max_failures=max_failures,
        force=force,
        rpm=rpm,
        tpm=tpm,
        expected_output_tokens=expected_output_tokens,
        ext=ext,
        options=options,
        shard=chosen,
        results=results,
        answer_schema=answer_schema,
        invalid_retries=invalid_retries,
        max_cost=max_cost,
        prices=prices,
        http=http,
        processes=workers,
    )
    try:
        if results is not None:
            check_results_path(results, out_dir, ext=ext, prompts=prompts)
        endpoint = resolve_endpoint(base_url=base_url, api_key_env=api_key_env, simulate=simulate)
        result = run_command(
            prompts,
            defaults,
            settings,
            endpoint,
            quiet=quiet,
            verbose=verbose,
            progress_interval=progress_interval,
            wait_lock=wait_lock,
            notify=lambda message: typer.echo(message, err=True),
        )
    except NothingToDo as exc:
        typer.echo(f"streamdump: {exc}", err=True)
        raise typer.Exit(EXIT_OK) from None
    except SetupError as exc:
        _fail_setup(str(exc))
        return
    except KeyboardInterrupt:  # Ctrl-C while the input is being checked: nothing was sent
        typer.echo("streamdump: interrupted before anything was sent", err=True)
        raise typer.Exit(130) from None
    typer.echo(describe(result, str(out_dir), chosen), err=True)
    raise typer.Exit(exit_code(result))


@app.command(help=CHECK_HELP)
def check(
    base_url: Annotated[
        Optional[str],
        typer.Option(
            "--base-url",
            envvar="OPENAI_BASE_URL",
            metavar="URL",
            help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 \\[default: OpenAI].",
        ),
    ] = None,
    api_key_env: Annotated[
        str, typer.Option("--api-key-env", metavar="NAME", help="Environment variable holding the API key.")
    ] = "OPENAI_API_KEY",
    model: Annotated[
        Optional[str],
        typer.Option(
            "--model", "-m", envvar="STREAMDUMP_MODEL", metavar="NAME", help=f"Model \\[default: {C.DEFAULT_MODEL}]."
        ),
    ] = None,
    api: Annotated[
        str,
        typer.Option(
            "--api",
            envvar="STREAMDUMP_API",
            metavar="API",
            help="Wire format to check: chat, responses or completions (as run's --api).",
        ),
    ] = "chat",
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.01, metavar="S", help="Longest each request may take, seconds.")
    ] = C.CHECK_TIMEOUT,
) -> None:
    from .check import run_check, works
    from .endpoint import public_url, resolve_endpoint
    from .wire import NAMES as API_NAMES
    from .wire import wire_for

    if api not in API_NAMES:
        _fail_setup(f"--api must be one of {', '.join(API_NAMES)}, not {api!r}")
    try:
        endpoint = resolve_endpoint(base_url=base_url, api_key_env=api_key_env, simulate=False)
    except SetupError as exc:
        _fail_setup(str(exc))
        return
    chosen = model or C.DEFAULT_MODEL
    where = public_url(endpoint.base_url) or "OpenAI (https://api.openai.com/v1)"
    typer.echo(f"streamdump check: {where}, --api {api}, model {chosen}")
    points = run_check(
        base_url=endpoint.base_url, api_key=endpoint.api_key, model=chosen, wire=wire_for(api), deadline=timeout
    )
    for point in points:
        typer.echo(point.line())
    ok = works(points)
    typer.echo("a run would work" if ok else "a run would not work: see FAIL above")
    raise typer.Exit(EXIT_OK if ok else EXIT_NOT_ALL_OK)


@app.command()
def status(
    out_dir: Annotated[Path, typer.Argument(metavar="DIR", help="An out-dir streamdump has written.")] = Path(
        C.DEFAULT_OUT_DIR
    ),
    prompts: Annotated[
        Optional[str], typer.Option("--prompts", help="Also say what is still to do from this prompts file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    price_in: Annotated[
        Optional[float], typer.Option("--price-in", min=0.0, help="Price the spend: USD per million prompt tokens.")
    ] = None,
    price_out: Annotated[
        Optional[float], typer.Option("--price-out", min=0.0, help="Price the spend: USD per million output tokens.")
    ] = None,
    price_cached_in: Annotated[
        Optional[float],
        typer.Option(
            "--price-cached-in", min=0.0, help="USD per million cached prompt tokens \\[default: --price-in]."
        ),
    ] = None,
) -> None:
    """Say what an out-dir holds: counts per status, tokens, failures, and what is still to do.

    Exit 0 when everything is ok (and, with --prompts, nothing is left to do), 1 otherwise, 2 when
    DIR holds no manifest or the prompts file is invalid. The spend is what the runs counted, or
    priced with --price-in and --price-out when given.
    """
    import json

    from .cost import run_prices
    from .status import collect_status, format_status

    if (price_in is None) != (price_out is None):
        _fail_setup("status prices the spend with both --price-in and --price-out, or neither")
    try:
        prices = run_prices(None, price_in=price_in, price_out=price_out, price_cached_in=price_cached_in)
        report = collect_status(out_dir, prompts, prices=prices)
    except SetupError as exc:
        _fail_setup(str(exc))
        return
    typer.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False) if as_json else format_status(report))
    raise typer.Exit(EXIT_OK if report.complete else EXIT_NOT_ALL_OK)


@app.command()
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


def main() -> None:
    # Keep a broken pipe on stderr (e.g. `| head`) from turning into a traceback.
    try:
        app()
    except BrokenPipeError:
        os._exit(EXIT_NOT_ALL_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
