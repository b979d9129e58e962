"""Turn an item id (untrusted text from the user's file) into a file name inside the out-dir.

Pure functions; no I/O.  The rules:

- a *plain* id (letters, digits, ``.``, ``_``, ``-``; at most 100 characters; not starting with
  ``.``; not a name Windows reserves; not ending like one of our own side files; not ``manifest``,
  ``batches`` or ``summary`` with or without a suffix, the run's own files) is its own name;
- any other id gets ``<sanitized>~<hash>``: a readable form plus 16 hex digits of its SHA-256.
  ``~`` never occurs in a plain name, so a hashed name cannot equal a plain one;
- ids whose plain names are equal when case is ignored (``Poem`` and ``poem``) all take the hashed
  form, so that the names do not depend on which came first in the file.
"""

from __future__ import annotations

import hashlib
import re

MAX_NAME = 100
HASH_HEX = 16
_SANITIZED_MAX = MAX_NAME - HASH_HEX - 1

_PLAIN = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_NAME}}}")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._-]+")
# Names Windows reserves, with or without an extension ("CON", "con.txt", "COM1").
_RESERVED = re.compile(r"(?i)(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?")
# Endings of the side files written next to an answer (<name>.error.json, <name>.2.txt, ...):
# an id ending like one of them could land on another item's side file, so it is hashed.
_SIDE_SUFFIX = re.compile(r"(?i).*\.(error|reasoning|refusal|tool_calls|part|[0-9]+)")
# The run's own files (manifest.jsonl, manifest.K-of-N.jsonl, summary*.json, batches.jsonl): with
# --ext json(l) an id could land on them.
_RUN_FILE = re.compile(r"(?i)(manifest|summary|batches)(\..*)?")


def is_plain(item_id: str) -> bool:
    """True when the id can be used as a file name as it is."""
    return (
        _PLAIN.fullmatch(item_id) is not None
        and not item_id.startswith(".")
        and _RESERVED.fullmatch(item_id) is None
        and _SIDE_SUFFIX.fullmatch(item_id) is None
        and _RUN_FILE.fullmatch(item_id) is None
    )


def hashed_name(item_id: str) -> str:
    """``<sanitized>~<16 hex of sha256(id)>``: always safe, never equal to a plain name."""
    digest = hashlib.sha256(item_id.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_HEX]
    readable = _UNSAFE_RUN.sub("_", item_id).strip("._-")[:_SANITIZED_MAX].rstrip("._-")
    return f"{readable or 'id'}~{digest}"


def fold_key(item_id: str) -> str | None:
    """The case-insensitive key two plain ids collide on, or None for an id that is hashed anyway."""
    return item_id.casefold() if is_plain(item_id) else None


def safe_name(item_id: str, *, case_collision: bool = False) -> str:
    """The file name (without extension) for an id; ``case_collision`` forces the hashed form."""
    if not case_collision and is_plain(item_id):
        return item_id
    return hashed_name(item_id)
