"""Token counts with tiktoken, and never a download.

tiktoken fetches its encodings on first use, which fails offline.  The package ships the
``o200k_base`` and ``cl100k_base`` files under the names tiktoken's cache uses (the SHA-1 of their
URL).  An encoding tiktoken already has in its own cache is used as it is; otherwise a shipped
one is loaded from the package; otherwise there is no encoding and the count is an estimate
(about four characters a token), labelled as such.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import tiktoken

SHIPPED_DIR = Path(__file__).parent / "encodings"
_BLOB = "https://openaipublic.blob.core.windows.net/encodings/"
# Which file each encoding is built from (o200k_harmony is built on o200k_base's ranks).
_FILES = {
    "o200k_base": _BLOB + "o200k_base.tiktoken",
    "o200k_harmony": _BLOB + "o200k_base.tiktoken",
    "cl100k_base": _BLOB + "cl100k_base.tiktoken",
    "p50k_base": _BLOB + "p50k_base.tiktoken",
    "p50k_edit": _BLOB + "p50k_base.tiktoken",
    "r50k_base": _BLOB + "r50k_base.tiktoken",
}
DEFAULT_ENCODING = "o200k_base"
CHARS_PER_TOKEN = 4
# The chat format's overhead, as OpenAI's cookbook counts it.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3

_lock = threading.Lock()
_loaded: dict[str, tiktoken.Encoding | None] = {}


def _cache_key(url: str) -> str:
    return hashlib.sha1(url.encode()).hexdigest()


def _tiktoken_cache_dir() -> str:
    """Where tiktoken itself looks (same order as ``tiktoken.load.read_file_cached``)."""
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        return os.environ["TIKTOKEN_CACHE_DIR"]
    if "DATA_GYM_CACHE_DIR" in os.environ:
        return os.environ["DATA_GYM_CACHE_DIR"]
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def encoding_name(model: str) -> str:
    """tiktoken's encoding for a model name; o200k_base for names it does not know."""
    from tiktoken.model import encoding_name_for_model

    try:
        return encoding_name_for_model(model)
    except KeyError:
        return DEFAULT_ENCODING


def get_encoding(name: str) -> tiktoken.Encoding | None:
    """The encoding, from tiktoken's cache or the package; None if neither has it."""
    with _lock:
        if name not in _loaded:
            _loaded[name] = _load(name)
        return _loaded[name]


def _load(name: str) -> tiktoken.Encoding | None:
    import tiktoken

    url = _FILES.get(name)
    if url is None:
        return None
    key = _cache_key(url)
    cache_dir = _tiktoken_cache_dir()
    if cache_dir and os.path.exists(os.path.join(cache_dir, key)):
        return tiktoken.get_encoding(name)
    if not (SHIPPED_DIR / key).exists():
        return None
    # Point tiktoken's cache at the shipped files for this one load (it reads, never writes,
    # on a hit), then put the environment back.
    saved = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(SHIPPED_DIR)
    try:
        return tiktoken.get_encoding(name)
    finally:
        if saved is None:
            del os.environ["TIKTOKEN_CACHE_DIR"]
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = saved


class Counter:
    """Counts tokens for one model: exact with an encoding, else an estimate."""

    def __init__(self, model: str) -> None:
        self.encoding = get_encoding(encoding_name(model))

    @property
    def exact(self) -> bool:
        return self.encoding is not None

    def text(self, text: str) -> int:
        if self.encoding is None:
            return -(-len(text) // CHARS_PER_TOKEN)
        return len(self.encoding.encode_ordinary(text))

    def messages(self, messages: list[dict[str, Any]]) -> int:
        """Prompt tokens of a chat request, as the chat format counts them."""
        total = REPLY_PRIMING
        for message in messages:
            total += TOKENS_PER_MESSAGE
            for key, value in message.items():
                if key == "content":
                    total += self.text(content_text(value))
                elif isinstance(value, str):
                    total += self.text(value)
                    if key == "name":
                        total += TOKENS_PER_NAME
        return total


def content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


_counters: dict[str, Counter] = {}


def counter_for(model: str) -> Counter:
    counter = _counters.get(model)
    if counter is None:
        counter = _counters[model] = Counter(model)
    return counter
