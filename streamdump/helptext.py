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


RUN_HELP = r"""Run every prompt in PROMPTS as a stream; write one file per prompt into the out-dir.

Examples:
  streamdump run prompts.jsonl --simulate                       rehearse on the built-in simulator
  streamdump run prompts.jsonl -m gpt-4o-mini -c 32             OpenAI, key in OPENAI_API_KEY
  streamdump run prompts.jsonl --base-url http://localhost:8000/v1 -m MODEL     a local server

Input: JSONL, one object per line: {"id": "a", "prompt": "..."}, {"id": "b", "messages": \[...]}
or an OpenAI Batch API request line; with --template, any records. The README's "Input" says more.
"""

CHECK_HELP = r"""Ask the endpoint, with at most three tiny requests, whether a run would work.

Checks that it is reachable, the key is accepted, the model is served, streaming works, usage
comes in the stream (or will be estimated), stream_options is accepted, and the route exists.
One line per point; exit 0 when a run would work, 1 otherwise, 2 on bad usage.
"""


def escape(text: str) -> str:
    """Text made at run time, safe in rich markup (``rich.markup.escape`` without importing rich)."""
    return text.replace("[", "\\[")
