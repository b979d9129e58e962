"""What each option of ``streamdump run`` is: its flag, type, default's meaning, help and panel.

``cli.run`` takes these as its parameters' types; the command itself stays a page long.  Typer reads
the ``Annotated`` metadata wherever the alias is used, so an option is declared once, here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import _constants as C
from .helptext import Panel

Prompts = Annotated[
    str,
    typer.Argument(metavar="PROMPTS", help="JSONL file of prompts, or - for standard input."),
]
Template = Annotated[
    Optional[str],
    typer.Option(
        "--template",
        metavar="FILE",
        help="Render each input record into the prompt: {field}, {a.b}.",
        rich_help_panel=Panel.INPUT,
    ),
]
TemplateText = Annotated[
    Optional[str],
    typer.Option("--template-text", metavar="TEXT", help="--template given as text.", rich_help_panel=Panel.INPUT),
]
SystemTemplate = Annotated[
    Optional[str],
    typer.Option(
        "--system-template",
        metavar="FILE",
        help="Render each record into the system message.",
        rich_help_panel=Panel.INPUT,
    ),
]
SystemTemplateText = Annotated[
    Optional[str],
    typer.Option(
        "--system-template-text",
        metavar="TEXT",
        help="--system-template given as text.",
        rich_help_panel=Panel.INPUT,
    ),
]
OutDir = Annotated[
    Path,
    typer.Option(
        "--out-dir",
        "-o",
        help="Output directory (created if missing).",
        metavar="DIR",
        rich_help_panel=Panel.OUTPUT,
    ),
]
Model = Annotated[
    Optional[str],
    typer.Option(
        "--model",
        "-m",
        envvar="STREAMDUMP_MODEL",
        help=f"Model for lines that name none \\[default: {C.DEFAULT_MODEL}].",
        metavar="NAME",
        rich_help_panel=Panel.REQUEST,
    ),
]
Concurrency = Annotated[
    int,
    typer.Option(
        "--concurrency",
        "-c",
        min=1,
        help="Most streams open at any moment.",
        metavar="N",
        rich_help_panel=Panel.LIMITS,
    ),
]
BaseUrl = Annotated[
    Optional[str],
    typer.Option(
        "--base-url",
        envvar="OPENAI_BASE_URL",
        help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 \\[default: OpenAI].",
        metavar="URL",
        rich_help_panel=Panel.ENDPOINT,
    ),
]
ApiKeyEnv = Annotated[
    str,
    typer.Option(
        "--api-key-env",
        help="Environment variable holding the API key.",
        metavar="NAME",
        rich_help_panel=Panel.ENDPOINT,
    ),
]
System = Annotated[
    Optional[str],
    typer.Option(
        "--system", help="System message for lines without one.", metavar="TEXT", rich_help_panel=Panel.REQUEST
    ),
]
Temperature = Annotated[
    Optional[float],
    typer.Option(
        "--temperature", help="Temperature for lines that set none.", metavar="T", rich_help_panel=Panel.REQUEST
    ),
]
MaxTokens = Annotated[
    Optional[int],
    typer.Option(
        "--max-tokens",
        min=1,
        help="Output limit for lines that set none (max_tokens; max_output_tokens for --api responses).",
        metavar="N",
        rich_help_panel=Panel.REQUEST,
    ),
]
Api = Annotated[
    str,
    typer.Option(
        "--api",
        envvar="STREAMDUMP_API",
        metavar="chat|responses|completions",
        help="Wire format: chat completions, the Responses API, or text completions "
        "(a Batch API line goes by its own url).",
        rich_help_panel=Panel.ENDPOINT,
    ),
]
Simulate = Annotated[
    bool,
    typer.Option(
        "--simulate",
        help="Run against the built-in simulator (no key, no internet).",
        metavar="",
        rich_help_panel=Panel.ENDPOINT,
    ),
]
Verbose = Annotated[
    bool,
    typer.Option(
        "--verbose",
        "-v",
        help="Also print every retry (a terminal counts them on the bar).",
        metavar="",
        rich_help_panel=Panel.PROGRESS,
    ),
]
Quiet = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="Print only errors and the final summary.", metavar="", rich_help_panel=Panel.PROGRESS
    ),
]
MaxRetries = Annotated[
    int,
    typer.Option(
        "--max-retries", min=0, help="Retries after the first attempt.", metavar="N", rich_help_panel=Panel.RETRIES
    ),
]
BackoffBase = Annotated[
    float,
    typer.Option(
        "--backoff-base", min=0.0, help="Backoff base delay, seconds.", metavar="S", rich_help_panel=Panel.RETRIES
    ),
]
BackoffMax = Annotated[
    float,
    typer.Option(
        "--backoff-max", min=0.0, help="Longest backoff delay, seconds.", metavar="S", rich_help_panel=Panel.RETRIES
    ),
]
MaxRetryAfter = Annotated[
    float,
    typer.Option(
        "--max-retry-after",
        min=0.0,
        help="Cap on a server's Retry-After, seconds.",
        metavar="S",
        rich_help_panel=Panel.RETRIES,
    ),
]
IdleTimeout = Annotated[
    float,
    typer.Option(
        "--idle-timeout",
        min=0.01,
        help="Abandon and retry an attempt with no data for this long, seconds.",
        metavar="S",
        rich_help_panel=Panel.RETRIES,
    ),
]
Timeout = Annotated[
    float,
    typer.Option(
        "--timeout",
        min=0.01,
        help="Longest one attempt may take, seconds.",
        metavar="S",
        rich_help_panel=Panel.RETRIES,
    ),
]
MaxFailures = Annotated[
    Optional[int],
    typer.Option(
        "--max-failures",
        min=1,
        help="Stop the run after this many failed items.",
        metavar="N",
        rich_help_panel=Panel.RETRIES,
    ),
]
Force = Annotated[
    bool,
    typer.Option("--force", help="Redo every item, even those already done.", metavar="", rich_help_panel=Panel.OUTPUT),
]
Rpm = Annotated[
    Optional[float],
    typer.Option(
        "--rpm", min=0.001, help="Requests per minute, spread evenly.", metavar="N", rich_help_panel=Panel.LIMITS
    ),
]
Tpm = Annotated[
    Optional[float],
    typer.Option(
        "--tpm",
        min=1.0,
        help="Tokens per minute (prompt + max_tokens reserved per request).",
        metavar="N",
        rich_help_panel=Panel.LIMITS,
    ),
]
ExpectedOutputTokens = Annotated[
    int,
    typer.Option(
        "--expected-output-tokens",
        min=1,
        help="Output tokens assumed for lines without max_tokens.",
        metavar="N",
        rich_help_panel=Panel.LIMITS,
    ),
]
DryRun = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Check the input and price the job; send nothing, write nothing.",
        metavar="",
        rich_help_panel=Panel.LIMITS,
    ),
]
PriceIn = Annotated[
    Optional[float],
    typer.Option(
        "--price-in",
        min=0.0,
        help="USD per million prompt tokens (--dry-run, --max-cost).",
        metavar="USD",
        rich_help_panel=Panel.LIMITS,
    ),
]
PriceOut = Annotated[
    Optional[float],
    typer.Option(
        "--price-out",
        min=0.0,
        help="USD per million output tokens (--dry-run, --max-cost).",
        metavar="USD",
        rich_help_panel=Panel.LIMITS,
    ),
]
Batch = Annotated[
    bool,
    typer.Option(
        "--batch",
        help="With --dry-run: price the job at the Batch API's discount (half).",
        metavar="",
        rich_help_panel=Panel.LIMITS,
    ),
]
PriceCachedIn = Annotated[
    Optional[float],
    typer.Option(
        "--price-cached-in",
        min=0.0,
        help="USD per million cached prompt tokens, when the server reports them \\[default: --price-in].",
        metavar="USD",
        rich_help_panel=Panel.LIMITS,
    ),
]
MaxCost = Annotated[
    Optional[float],
    typer.Option(
        "--max-cost",
        min=0.0,
        metavar="USD",
        help="Spend at most this much in this run (needs --price-in and --price-out); then stop early.",
        rich_help_panel=Panel.LIMITS,
    ),
]
JsonSchema = Annotated[
    Optional[Path],
    typer.Option(
        "--json-schema",
        metavar="FILE",
        help="Ask for answers valid against this JSON Schema, check each one, redo invalid ones.",
        rich_help_panel=Panel.REQUEST,
    ),
]
InvalidRetries = Annotated[
    int,
    typer.Option(
        "--invalid-retries",
        min=0,
        help="Redo an answer that is not valid against its schema this many times.",
        metavar="N",
        rich_help_panel=Panel.RETRIES,
    ),
]
ProgressInterval = Annotated[
    float,
    typer.Option(
        "--progress-interval",
        min=0.0,
        help="Seconds between plain progress lines when stderr is not a terminal.",
        metavar="S",
        rich_help_panel=Panel.PROGRESS,
    ),
]
Ext = Annotated[
    Optional[str],
    typer.Option(
        "--ext",
        help="Extension of the answer files, e.g. md \\[default: txt; json with --json-schema].",
        metavar="EXT",
        rich_help_panel=Panel.OUTPUT,
    ),
]
NoReasoning = Annotated[
    bool,
    typer.Option(
        "--no-reasoning",
        help="Drop reasoning text instead of writing <name>.reasoning.txt.",
        metavar="",
        rich_help_panel=Panel.OUTPUT,
    ),
]
Shard = Annotated[
    Optional[str],
    typer.Option(
        "--shard",
        envvar="STREAMDUMP_SHARD",
        metavar="K/N",
        help="Take only shard K of N (by a hash of the id); auto/N reads K from "
        "JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID.",
        rich_help_panel=Panel.SCALE_OUT,
    ),
]
WaitLock = Annotated[
    bool,
    typer.Option(
        "--wait-lock",
        help="Wait for another run writing the same files in the out-dir, not refuse.",
        metavar="",
        rich_help_panel=Panel.SCALE_OUT,
    ),
]
ResultsJsonl = Annotated[
    Optional[Path],
    typer.Option(
        "--results-jsonl",
        metavar="FILE",
        help="Also write one line per finished item in the OpenAI Batch API output format.",
        rich_help_panel=Panel.OUTPUT,
    ),
]
Http = Annotated[
    str,
    typer.Option(
        "--http",
        envvar="STREAMDUMP_HTTP",
        metavar="aiohttp|httpx",
        help="HTTP transport under the openai client: aiohttp (faster) or httpx.",
    ),
]
Processes = Annotated[
    str,
    typer.Option(
        "--processes",
        metavar="N|auto",
        help="Split the run across N worker processes (auto: one per CPU this process may use).",
    ),
]
