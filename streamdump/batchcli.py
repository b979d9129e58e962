"""``streamdump batch submit|status|collect|cancel``: parse options, call ``streamdump.batch``, map exits.

Exit codes as ``run``'s: 0 done; 1 something is not ok (a batch still running, a failed request, an
API error after retries, a 401); 2 nothing could start (bad input, no batches in DIR, the lock
held; for ``status``, the server could not be asked); 130 Ctrl-C (no batch is ever cancelled by it).
Heavy imports happen inside the commands, so ``--help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, Optional, TypeVar

import typer

from . import _constants as C
from .errors import AttemptError, SetupError

if TYPE_CHECKING:
    from .batch.api import BatchCalls
    from .launch import Endpoint
    from .retry import RetryPolicy

T = TypeVar("T")
EXIT_OK, EXIT_NOT_ALL_OK, EXIT_SETUP, EXIT_INTERRUPTED = 0, 1, 2, 130

batch_app = typer.Typer(
    help="Run a job through the OpenAI Batch API: half the price, results within 24 hours, same out-dir.",
    no_args_is_help=True,
)

OutDir = Annotated[Path, typer.Option("--out-dir", "-o", help="Output directory (created if missing).")]
DirArg = Annotated[Path, typer.Argument(metavar="[DIR]", help="The out-dir the batches were submitted into.")]
BaseUrl = Annotated[
    Optional[str], typer.Option("--base-url", envvar="OPENAI_BASE_URL", help="OpenAI-compatible endpoint.")
]
KeyEnv = Annotated[str, typer.Option("--api-key-env", help="Environment variable holding the API key.")]
MaxRetries = Annotated[int, typer.Option("--max-retries", min=0, help="Retries of each API call.")]
BackoffBase = Annotated[float, typer.Option("--backoff-base", min=0.0, help="Backoff base delay, seconds.")]
BackoffMax = Annotated[float, typer.Option("--backoff-max", min=0.0, help="Longest backoff delay, seconds.")]
MaxRetryAfter = Annotated[float, typer.Option("--max-retry-after", min=0.0, help="Cap on Retry-After, seconds.")]
WaitLock = Annotated[bool, typer.Option("--wait-lock", help="Wait for a run writing into DIR, instead of refusing.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors and the final line.")]


def _say(quiet: bool) -> Callable[[str], None]:
    return (lambda message: None) if quiet else (lambda message: typer.echo(message, err=True))


def _exit(code: int, message: str | None = None) -> NoReturn:
    if message:
        typer.echo(message, err=True)
    raise typer.Exit(code)


def _policy(max_retries: int, backoff_base: float, backoff_max: float, max_retry_after: float) -> RetryPolicy:
    from .retry import RetryPolicy

    return RetryPolicy(
        max_retries=max_retries, backoff_base=backoff_base, backoff_max=backoff_max, max_retry_after=max_retry_after
    )


def _endpoint(base_url: str | None, api_key_env: str) -> Endpoint:
    from .launch import resolve_endpoint

    try:
        return resolve_endpoint(base_url=base_url, api_key_env=api_key_env, simulate=False)
    except SetupError as exc:
        _exit(EXIT_SETUP, f"streamdump: {exc}")


def _call(
    what: str,
    endpoint: Endpoint,
    policy: RetryPolicy,
    work: Callable[[BatchCalls], Awaitable[T]],
    *,
    notify: Callable[[str], None],
    error_exit: int = EXIT_NOT_ALL_OK,
) -> T:
    from .batch.launch import with_calls

    try:
        return with_calls(endpoint, policy, work, notify=notify)
    except AttemptError as exc:
        hint = " (check the API key)" if exc.status in (401, 403) else ""
        _exit(error_exit, f"streamdump: batch {what}: {exc}{hint}")
    except KeyboardInterrupt:
        _exit(EXIT_INTERRUPTED, f"streamdump: batch {what}: interrupted; no batch was cancelled (run it again)")


@batch_app.command()
def submit(
    prompts: Annotated[str, typer.Argument(metavar="PROMPTS", help="JSONL file of prompts, or - for standard input.")],
    out_dir: OutDir = Path(C.DEFAULT_OUT_DIR),
    model: Annotated[
        Optional[str], typer.Option("--model", "-m", envvar="STREAMDUMP_MODEL", help="Model for lines that name none.")
    ] = None,
    system: Annotated[Optional[str], typer.Option("--system", help="System message for lines without one.")] = None,
    temperature: Annotated[
        Optional[float], typer.Option("--temperature", help="Temperature for lines without.")
    ] = None,
    max_tokens: Annotated[
        Optional[int], typer.Option("--max-tokens", min=1, help="Output limit for lines that set none.")
    ] = None,
    api: Annotated[
        str,
        typer.Option(
            "--api",
            envvar="STREAMDUMP_API",
            metavar="chat|responses|completions",
            help="Wire format of lines that are not Batch API lines (as for run).",
        ),
    ] = "chat",
    ext: Annotated[str, typer.Option("--ext", help="Extension of the answer files, e.g. md.")] = "txt",
    template: Annotated[Optional[str], typer.Option("--template", metavar="FILE", help="Render records.")] = None,
    template_text: Annotated[Optional[str], typer.Option("--template-text", metavar="TEXT")] = None,
    system_template: Annotated[Optional[str], typer.Option("--system-template", metavar="FILE")] = None,
    system_template_text: Annotated[Optional[str], typer.Option("--system-template-text", metavar="TEXT")] = None,
    max_batch_requests: Annotated[
        int, typer.Option("--max-batch-requests", min=1, max=50_000, help="Most requests in one batch.")
    ] = 50_000,
    base_url: BaseUrl = None,
    api_key_env: KeyEnv = "OPENAI_API_KEY",
    max_retries: MaxRetries = C.MAX_RETRIES,
    backoff_base: BackoffBase = C.BACKOFF_BASE,
    backoff_max: BackoffMax = C.BACKOFF_MAX,
    max_retry_after: MaxRetryAfter = C.MAX_RETRY_AFTER,
    wait_lock: WaitLock = False,
    quiet: Quiet = False,
) -> None:
    """Send the items of PROMPTS not yet done in DIR as Batch API batches (completion window 24h)."""
    from .batch.launch import locked
    from .batch.report import count
    from .batch.split import Limits
    from .batch.submit import SubmitSettings
    from .batch.submit import submit as submit_batches
    from .inputfile import scan
    from .jobs import cli_defaults
    from .layout import check_ext
    from .output import prepare_out_dir

    say = _say(quiet)
    try:
        ext = check_ext(ext)
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
        )
        endpoint = _endpoint(base_url, api_key_env)
        plan = scan(prompts, defaults)
    except (ValueError, SetupError) as exc:
        _exit(EXIT_SETUP, f"streamdump: {exc}")
    except KeyboardInterrupt:
        _exit(EXIT_INTERRUPTED, "streamdump: interrupted before anything was sent")
    settings = SubmitSettings(out_dir=out_dir, ext=ext, limits=Limits(requests=max_batch_requests))
    policy = _policy(max_retries, backoff_base, backoff_max, max_retry_after)
    try:
        prepare_out_dir(out_dir)
        with locked(out_dir, wait=wait_lock, notify=say):
            result = _call(
                "submit",
                endpoint,
                policy,
                lambda calls: submit_batches(plan, defaults, settings, calls, notify=say),
                notify=say,
            )
    except SetupError as exc:
        _exit(EXIT_SETUP, f"streamdump: {exc}")
    finally:
        plan.discard()
    skipped = f"{result.already_done} already done, {result.in_batches} already in a batch"
    if not result.created:
        _exit(EXIT_OK, f"streamdump: nothing left to send ({skipped})")
    _exit(
        EXIT_OK,
        f"streamdump: submitted {count(result.requests, 'request')} in {count(len(result.created), 'batch')} "
        f"({skipped}); "
        f"collect with: streamdump batch collect {out_dir}",
    )


@batch_app.command()
def status(
    out_dir: DirArg = Path(C.DEFAULT_OUT_DIR),
    base_url: BaseUrl = None,
    api_key_env: KeyEnv = "OPENAI_API_KEY",
    max_retries: MaxRetries = C.MAX_RETRIES,
    backoff_base: BackoffBase = C.BACKOFF_BASE,
    backoff_max: BackoffMax = C.BACKOFF_MAX,
    max_retry_after: MaxRetryAfter = C.MAX_RETRY_AFTER,
) -> None:
    """Each batch's status and request counts. Exit 0 when every batch completed with no failed
    request, 1 otherwise, 2 when DIR holds no batches or the server could not be asked."""
    from .batch.launch import require_journal
    from .batch.report import batch_status, format_status

    try:
        require_journal(out_dir)
    except SetupError as exc:
        _exit(EXIT_SETUP, f"streamdump: {exc}")
    endpoint = _endpoint(base_url, api_key_env)
    policy = _policy(max_retries, backoff_base, backoff_max, max_retry_after)
    report = _call(
        "status",
        endpoint,
        policy,
        lambda calls: batch_status(out_dir, calls),
        notify=_say(False),
        error_exit=EXIT_SETUP,
    )
    typer.echo(format_status(report))
    raise typer.Exit(EXIT_OK if report.complete else EXIT_NOT_ALL_OK)


@batch_app.command()
def collect(
    out_dir: DirArg = Path(C.DEFAULT_OUT_DIR),
    wait: Annotated[
        bool, typer.Option("--wait", help="Ask again, with backoff, until every batch has finished.")
    ] = False,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", min=0.0, help="First wait between asks with --wait, seconds.")
    ] = C.BATCH_POLL_FIRST,
    poll_max: Annotated[
        float, typer.Option("--poll-max", min=0.0, help="Longest wait between asks, seconds.")
    ] = C.BATCH_POLL_MAX,
    no_reasoning: Annotated[
        bool, typer.Option("--no-reasoning", help="Drop reasoning text instead of writing <name>.reasoning.txt.")
    ] = False,
    base_url: BaseUrl = None,
    api_key_env: KeyEnv = "OPENAI_API_KEY",
    max_retries: MaxRetries = C.MAX_RETRIES,
    backoff_base: BackoffBase = C.BACKOFF_BASE,
    backoff_max: BackoffMax = C.BACKOFF_MAX,
    max_retry_after: MaxRetryAfter = C.MAX_RETRY_AFTER,
    wait_lock: WaitLock = False,
    quiet: Quiet = False,
) -> None:
    """Write every finished batch's results into DIR, as a streamed run writes them."""
    from .batch.collect import CollectSettings
    from .batch.collect import collect as collect_batches
    from .batch.launch import locked, require_journal
    from .batch.report import count

    say = _say(quiet)
    settings = CollectSettings(
        out_dir=out_dir, keep_reasoning=not no_reasoning, wait=wait, poll_first=poll_interval, poll_max=poll_max
    )
    try:
        require_journal(out_dir)
        endpoint = _endpoint(base_url, api_key_env)
        policy = _policy(max_retries, backoff_base, backoff_max, max_retry_after)
        with locked(out_dir, wait=wait_lock, notify=say):
            result = _call(
                "collect", endpoint, policy, lambda calls: collect_batches(settings, calls, notify=say), notify=say
            )
    except SetupError as exc:
        _exit(EXIT_SETUP, f"streamdump: {exc}")
    written = ", ".join(f"{n} {status}" for status, n in sorted(result.statuses.items())) or "no new items"
    parts = [f"{count(len(result.collected), 'batch')} collected ({written}; {result.unchanged} already written)"]
    if result.running:
        parts.append(f"{len(result.running)} still running")
    if result.unsent:
        parts.append(f"{result.unsent} never created (run batch submit again)")
    if result.released:
        parts.append(f"{result.released} refused for the provider's queue (run batch submit again)")
    _exit(EXIT_OK if result.all_ok else EXIT_NOT_ALL_OK, f"streamdump: {'; '.join(parts)}")


@batch_app.command()
def cancel(
    out_dir: DirArg = Path(C.DEFAULT_OUT_DIR),
    base_url: BaseUrl = None,
    api_key_env: KeyEnv = "OPENAI_API_KEY",
    max_retries: MaxRetries = C.MAX_RETRIES,
    backoff_base: BackoffBase = C.BACKOFF_BASE,
    backoff_max: BackoffMax = C.BACKOFF_MAX,
    max_retry_after: MaxRetryAfter = C.MAX_RETRY_AFTER,
    wait_lock: WaitLock = False,
) -> None:
    """Cancel the unfinished batches (collect still writes what they finished)."""
    from .batch.launch import locked, require_journal
    from .batch.report import cancel_batches, count

    say = _say(False)
    try:
        require_journal(out_dir)
        endpoint = _endpoint(base_url, api_key_env)
        policy = _policy(max_retries, backoff_base, backoff_max, max_retry_after)
        with locked(out_dir, wait=wait_lock, notify=say):
            cancelled = _call("cancel", endpoint, policy, lambda calls: cancel_batches(out_dir, calls), notify=say)
    except SetupError as exc:
        _exit(EXIT_SETUP, f"streamdump: {exc}")
    asked = count(len(cancelled), "batch")
    _exit(EXIT_OK, f"streamdump: asked {asked} to cancel: {' '.join(cancelled) or '(none running)'}")
