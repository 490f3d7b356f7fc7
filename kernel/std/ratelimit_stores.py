"""Rate-limit stores of the std plugins: ``memory://`` (one process) and ``sqlite://`` (every
process on the host that opens the same file)."""

from __future__ import annotations

import threading
import time

from kernel.interfaces.ratelimit import RateLimitStore, refill_and_take
from kernel.specs import Options
from kernel.std.memory_impl import name_from_url
from kernel.std.sqlite_db import Database, number_option, path_from_url

_memory_buckets: dict[str, dict[str, tuple[float, float]]] = {}
_memory_lock = threading.Lock()


class MemoryRateLimitStore(RateLimitStore):
    """``memory://name``: buckets shared by every App of this process naming the same store."""

    def __init__(self, url: str, options: Options | None = None) -> None:
        with _memory_lock:
            self._buckets = _memory_buckets.setdefault(name_from_url(url), {})

    def take(self, key: str, rate: float, capacity: float = 1.0) -> float:
        with _memory_lock:
            now = time.monotonic()
            tokens, stamp = self._buckets.get(key, (capacity, now))
            tokens, wait = refill_and_take(tokens, stamp, now, rate, capacity)
            self._buckets[key] = (tokens, now)
        return wait


SCHEMA = """
CREATE TABLE IF NOT EXISTS kernel_rate_buckets (
    key TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    stamp REAL NOT NULL
);
"""


class SqliteRateLimitStore(RateLimitStore):
    """``sqlite:///path.db``: one row per bucket, read and written in one write transaction, so
    processes on this host take tokens one at a time. Wall-clock time, shared by the host."""

    def __init__(self, url: str, options: Options | None = None) -> None:
        options = options or {}
        self._db = Database(path_from_url(url), SCHEMA,
                            number_option(options, "busy_timeout", 30.0),
                            str(options.get("synchronous", "NORMAL")))

    def take(self, key: str, rate: float, capacity: float = 1.0) -> float:
        with self._db.write() as conn:
            now = time.time()
            row = conn.execute("SELECT tokens, stamp FROM kernel_rate_buckets WHERE key = ?",
                               (key,)).fetchone()
            tokens, stamp = row if row is not None else (capacity, now)
            tokens, wait = refill_and_take(tokens, stamp, now, rate, capacity)
            conn.execute("INSERT INTO kernel_rate_buckets (key, tokens, stamp) VALUES (?, ?, ?) "
                         "ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, "
                         "stamp = excluded.stamp", (key, tokens, now))
        return wait

    def close(self) -> None:
        self._db.close()
