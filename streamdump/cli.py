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
from . import runoptions as opts
from .batchcli import batch_app
from .errors import NothingToDo, SetupError
from .helptext import CHECK_HELP, RUN_HELP
from .simcli import simulate

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
    prompts: opts.Prompts,
    template: opts.Template = None,
    template_text: opts.TemplateText = None,
    system_template: opts.SystemTemplate = None,
    system_template_text: opts.SystemTemplateText = None,
    out_dir: opts.OutDir = Path(C.DEFAULT_OUT_DIR),
    model: opts.Model = None,
    concurrency: opts.Concurrency = C.DEFAULT_CONCURRENCY,
    base_url: opts.BaseUrl = None,
    api_key_env: opts.ApiKeyEnv = "OPENAI_API_KEY",
    system: opts.System = None,
    temperature: opts.Temperature = None,
    max_tokens: opts.MaxTokens = None,
    api: opts.Api = "chat",
    simulate: opts.Simulate = False,
    verbose: opts.Verbose = False,
    quiet: opts.Quiet = False,
    max_retries: opts.MaxRetries = C.MAX_RETRIES,
    backoff_base: opts.BackoffBase = C.BACKOFF_BASE,
    backoff_max: opts.BackoffMax = C.BACKOFF_MAX,
    max_retry_after: opts.MaxRetryAfter = C.MAX_RETRY_AFTER,
    idle_timeout: opts.IdleTimeout = C.IDLE_TIMEOUT,
    timeout: opts.Timeout = C.ATTEMPT_TIMEOUT,
    max_failures: opts.MaxFailures = None,
    force: opts.Force = False,
    rpm: opts.Rpm = None,
    tpm: opts.Tpm = None,
    expected_output_tokens: opts.ExpectedOutputTokens = C.EXPECTED_OUTPUT_TOKENS,
    dry_run: opts.DryRun = False,
    price_in: opts.PriceIn = None,
    price_out: opts.PriceOut = None,
    batch: opts.Batch = False,
    price_cached_in: opts.PriceCachedIn = None,
    max_cost: opts.MaxCost = None,
    json_schema: opts.JsonSchema = None,
    invalid_retries: opts.InvalidRetries = C.INVALID_RETRIES,
    progress_interval: opts.ProgressInterval = C.PROGRESS_INTERVAL,
    ext: opts.Ext = None,
    no_reasoning: opts.NoReasoning = False,
    shard: opts.Shard = None,
    wait_lock: opts.WaitLock = False,
    results_jsonl: opts.ResultsJsonl = None,
    http: opts.Http = C.DEFAULT_HTTP,
    processes: opts.Processes = "1",
) -> None:
    from .attempt import AttemptSettings
    from .cost import run_prices
    from .jobs import cli_defaults, defaults_options
    from .launch import describe, exit_code, public_url, resolve_endpoint, run_command
    from .layout import check_ext
    from .results import check_results_path
    from .retry import RetryPolicy
    from .runstate import RunSettings
    from .schema import load_schema, schema_note
    from .shard import ShardError, parse_shard, tagged
    from .transport import TRANSPORTS

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
        defaults = cli_defaults(
            model=model,
            api=api,
            system=system,
            temperature=temperature,
            max_tokens=max_tokens,
            template=template,
            template_text=template_text,
            system_template=system_template,
            system_template_text=system_template_text,
            answer_schema=answer_schema,
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

    asks = api != "completions"  # text completions send no schema: there is no strict mode to miss
    if answer_schema is not None and asks and not quiet and not dry_run and (note := schema_note(answer_schema)):
        typer.echo(note, err=True)
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
    from .jobs import check_api
    from .wire import wire_for

    try:
        check_api(api)
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


app.command()(simulate)  # streamdump simulate (see simcli), listed after the commands above


def main() -> None:
    # Keep a broken pipe on stderr (e.g. `| head`) from turning into a traceback.
    try:
        app()
    except BrokenPipeError:
        os._exit(EXIT_NOT_ALL_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
