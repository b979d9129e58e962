"""How big each scenario is, per profile: ``full`` (the issue's sizes), ``quick`` (for development)
and ``smoke`` (the test suite's, seconds in all)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Streams:
    """Streams of ``length`` pieces at ``tps`` pieces a second, ``concurrency`` at once."""

    concurrency: int
    items: int
    length: int
    tps: float = 50.0
    ttft: float = 0.2
    watch: int = 0  # how many output files the disk watcher samples (0: none)
    poll: float = 0.005  # the watcher's poll interval, seconds


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    cpu: Streams  # client CPU per chunk (the issue: 500 streams)
    wide: Streams  # 1,000 streams: duration against the ideal, chunk-to-disk delay
    few: Streams  # a few streams: is each piece written as it arrives?
    short: Streams  # 2-token responses at concurrency 200: requests per second
    big_items: int  # a run this long at concurrency 200: peak RSS; then resumed
    big_concurrency: int
    dry_items: int  # a dry run this long: peak RSS
    help_runs: int
    timeout: float  # longest any one client run may take, seconds
    shared_simulator: bool = False  # one simulator for all the clients of a scenario (tiny sizes only)


PROFILES = {
    "full": Profile(
        "full",
        cpu=Streams(500, 500, 200),
        wide=Streams(1000, 1000, 200, watch=100),
        few=Streams(4, 4, 50, watch=4, poll=0.002),
        short=Streams(200, 5000, 2, tps=0, ttft=0),
        big_items=100_000,
        big_concurrency=200,
        dry_items=1_000_000,
        help_runs=7,
        timeout=300,
    ),
    "quick": Profile(
        "quick",
        cpu=Streams(500, 500, 50),
        wide=Streams(1000, 1000, 50, watch=100),
        few=Streams(4, 4, 30, watch=4, poll=0.002),
        short=Streams(200, 1000, 2, tps=0, ttft=0),
        big_items=10_000,
        big_concurrency=200,
        dry_items=100_000,
        help_runs=3,
        timeout=120,
    ),
    "smoke": Profile(
        "smoke",
        cpu=Streams(8, 8, 5, tps=200, ttft=0),
        wide=Streams(12, 12, 5, tps=200, ttft=0, watch=4),
        few=Streams(2, 2, 5, tps=100, ttft=0, watch=2, poll=0.002),
        short=Streams(8, 24, 2, tps=0, ttft=0),
        big_items=100,
        big_concurrency=20,
        dry_items=200,
        help_runs=1,
        timeout=60,
        shared_simulator=True,
    ),
}
