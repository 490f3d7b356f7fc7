"""The ``sqlite://`` rate-limit store: token buckets shared by every process on the host that
opens the same file."""

from __future__ import annotations

import time

from kernel.interfaces.ratelimit import RateLimitStore, refill_and_take
from kernel.specs import Options
from kernel.std.sqlite.db import Database, file_settings, path_from_url

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
        self._db = Database(path_from_url(url), SCHEMA,
                            *file_settings(options or {}, "SQLite rate-limit store"))

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
