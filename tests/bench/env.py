"""What the driver tells the task modules (through the environment, so worker subprocesses
read the same values): the Redis URL, the kernel broker URL and where the counter lives."""

from __future__ import annotations

import os

REDIS_URL = "BENCH_REDIS_URL"
KERNEL_URL = "BENCH_KERNEL_URL"
#: "redis" (one INCR on BENCH_REDIS_URL) or "results" (the kernel app's result store; SQLite).
COUNTER = "BENCH_COUNTER"

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
#: the counter every task body increments once; the driver polls it to count completions.
COUNTER_KEY = "bench.done"
#: concurrency of the I/O-bound scenario's pools (threads, greenlets, asyncio jobs).
IO_CONCURRENCY = "BENCH_IO_CONCURRENCY"


def redis_url() -> str:
    return os.environ.get(REDIS_URL, DEFAULT_REDIS_URL)


def redis_client() -> object:
    """A redis-py client on the benchmark database (imported late: the SQLite-only run and the
    smoke test need no redis package)."""
    import redis

    return redis.Redis.from_url(redis_url())


_client: object | None = None
_client_pid: int | None = None


def incr() -> None:
    """The task body every system runs: one INCR of `COUNTER_KEY`. One client per process,
    made after any fork (a connection must not cross a fork)."""
    global _client, _client_pid
    if _client_pid != os.getpid():
        _client, _client_pid = redis_client(), os.getpid()
    _client.incr(COUNTER_KEY)  # type: ignore[attr-defined]
