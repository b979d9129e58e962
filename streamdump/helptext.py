"""What ``--help`` says beyond each option's line: the panels options are grouped in, and the prose
that opens ``run --help``.

Help is rendered with rich markup, where ``[word]`` is a style tag: write ``\\[`` for a literal
bracket (``escape`` does it for text made at run time).  Adding an option to a panel is one line:
``rich_help_panel=Panel.LIMITS``.
"""

from __future__ import annotations


class Panel:
    """The panels of ``run --help``, in the order they are first used."""

    INPUT = "Input"
    REQUEST = "What is asked"
    ENDPOINT = "Endpoint"
    OUTPUT = "Output"
    LIMITS = "Limits and cost"
    RETRIES = "Retries and timeouts"
    SCALE_OUT = "Scale-out"
    PROGRESS = "Progress"
    SERVER = "Server"  # simulate
    FAULTS = "Faults and limits"  # simulate


# Kept within 78 columns a line: rich keeps these line breaks and wraps at the terminal's width.
RUN_HELP = r"""Run every prompt in PROMPTS as a stream; write one file per prompt into the out-dir.

Examples:
  streamdump run prompts.jsonl --simulate           # rehearse, offline
  streamdump run prompts.jsonl -m gpt-4o-mini -c 32 # OpenAI: $OPENAI_API_KEY
  streamdump run prompts.jsonl --base-url http://localhost:8000/v1 -m MODEL

Input: JSONL, {"id": "a", "prompt": "..."} or {"id": "b", "messages": \[...]},
or Batch API request lines; any records with --template. README: "Input".
"""

CHECK_HELP = r"""Ask the endpoint, with at most three tiny requests, whether a run would work.

Says, one line each: reachable, key accepted, model served, streaming works,
usage in the stream (or estimated), stream_options accepted, route exists.
Exit 0 when a run would work, 1 otherwise, 2 on bad usage.
"""


def escape(text: str) -> str:
    """Text made at run time, safe in rich markup (``rich.markup.escape`` without importing rich)."""
    return text.replace("[", "\\[")
