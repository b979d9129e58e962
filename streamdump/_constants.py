"""Defaults for every tunable, in one place (openai-python's ``_constants.py`` is the model)."""

DEFAULT_OUT_DIR = "out"
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_CONCURRENCY = 8
# Workers per HTTP connection pool: a pool's cost per request grows with its size (see launch).
POOL_SIZE = 8
# --http: openai's aiohttp transport (about half httpx2's CPU a chunk) or httpx2's.
DEFAULT_HTTP = "aiohttp"

# Timeouts, in seconds.
CONNECT_TIMEOUT = 10.0
ATTEMPT_TIMEOUT = 600.0  # --timeout: bounds one whole attempt
IDLE_TIMEOUT = 60.0  # --idle-timeout: no data chunk for this long is a stall

# Retry policy.
MAX_RETRIES = 5  # retries after the first attempt
BACKOFF_BASE = 1.0
BACKOFF_MAX = 60.0
MAX_RETRY_AFTER = 300.0

# --tpm reserves a request's prompt plus its max_tokens, or this when it sets none.
EXPECTED_OUTPUT_TOKENS = 1000

# --max-cost counts a request's prompt tokens with this margin (the server may count a few more).
COST_PROMPT_MARGIN = 0.10
# --json-schema: an invalid answer is redone this many times (apart from the retries above).
INVALID_RETRIES = 2

# After SIGINT/SIGTERM the run exits within this many seconds, however cleanup goes (promised: 5).
SIGNAL_EXIT_DEADLINE = 4.5

# How long cleanup (flush a part file, append a manifest line) may take when cancelled.
CLEANUP_TIMEOUT = 3.0
# Plain progress lines (stderr not a terminal) are printed this often, in seconds.
PROGRESS_INTERVAL = 10.0
# The first attempts of a run that decide a wrong endpoint (see firstcontact).
FIRST_CONTACT_ATTEMPTS = 3
# The most of a server's error text kept in an error message.
SERVER_MESSAGE_CHARS = 300
# The most of a text (not JSON) error body kept in the error record.
ERROR_BODY_CHARS = 4000
# streamdump check: the output limit of its one streamed request (the Responses API's minimum is
# 16), and how long each of its requests may take, in seconds.
CHECK_OUTPUT_LIMIT = 16
CHECK_TIMEOUT = 30.0

# batch collect --wait: the first wait between asks about running batches, doubling up to the last.
BATCH_POLL_FIRST = 30.0
BATCH_POLL_MAX = 600.0

# A key shorter than this is no secret (local servers take EMPTY or x) and is not redacted.
MIN_SECRET_KEY = 8
# The longest SSE line, or event, a server may send: past it the attempt fails (memory stays bounded).
MAX_EVENT_BYTES = 8 * 1024 * 1024

# File descriptors a run needs: per concurrent item (its connection, and the part files a stream
# usually has open at once: the answer and its reasoning), plus this many for everything else.
FDS_PER_ITEM = 3
FDS_MARGIN = 64

# The run reads the prompts file off the event loop in blocks of this many bytes (one thread hop each).
INPUT_BLOCK = 1024 * 1024
