"""The baseline a tutorial gives: typed chunks, ``asyncio.gather`` under a semaphore, and one
``aiofiles`` write per token.  Kept deliberately plain; it is what streamdump is compared with."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiofiles
import openai

from .floor import read_prompts

__all__ = ["read_prompts", "run_baseline"]


async def _one(
    client: openai.AsyncOpenAI, semaphore: asyncio.Semaphore, item: dict[str, Any], out_dir: Path, model: str
) -> tuple[float, int, str | None]:
    """(duration, content chunks, error) for one prompt."""
    async with semaphore:
        started = time.monotonic()
        chunks = 0
        try:
            async with aiofiles.open(out_dir / f"{item['id']}.txt", "w", encoding="utf-8") as handle:
                stream = await client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": item["prompt"]}], stream=True
                )
                async for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        chunks += 1
                        await handle.write(chunk.choices[0].delta.content)
        except Exception as exc:
            return time.monotonic() - started, chunks, repr(exc)
        return time.monotonic() - started, chunks, None


async def run_baseline(
    items: list[dict[str, Any]], out_dir: Path, base_url: str, concurrency: int, model: str
) -> dict[str, Any]:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-bench")
    semaphore = asyncio.Semaphore(concurrency)
    async with client:
        results = await asyncio.gather(*(_one(client, semaphore, item, out_dir, model) for item in items))
    errors = [error for _, _, error in results if error]
    return {
        "items": len(items),
        "ok": len(items) - len(errors),
        "failed": len(errors),
        "first_error": errors[0] if errors else None,
        "chunks": sum(chunks for _, chunks, _ in results),
        "durations": [duration for duration, _, error in results if not error],
    }
