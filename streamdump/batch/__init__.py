"""The OpenAI Batch API as a second way to run a job, into the same out-dir as ``run``.

``journal`` (DIR/batches.jsonl: every step, before and after), ``split`` (requests into files within
the API's limits; pure), ``api`` (the files and batches calls, retried, and found again after an
interruption), ``submit``, ``collect`` (results into the item files and the manifest, through
``itemfiles``), ``report`` (``batch status``), ``pending`` (what ``run`` must leave to the batches).
"""
