"""The SQLite result store: results in a table of the same kind of file the transport uses
(the same file can hold both). Counters are atomic across processes; waiting is woken at once
by a write from this process and polls for writes from others."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from kernel.interfaces.results import ResultStore
from kernel.specs import Options
from kernel.std.sqlite import RESULT_STORE_CAPABILITIES
from kernel.std.sqlite.db import Database, Poller, file_settings, path_from_url

SCHEMA = """
CREATE TABLE IF NOT EXISTS kernel_results (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    expires_at REAL
);
CREATE INDEX IF NOT EXISTS kernel_results_expiry
    ON kernel_results (expires_at) WHERE expires_at IS NOT NULL;
"""

SET = ("INSERT INTO kernel_results (key, value, expires_at) VALUES (?, ?, ?) "
       "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at")
#: stores only where no live value is (an expired one counts as none).
ADD = ("INSERT INTO kernel_results (key, value, expires_at) VALUES (?, ?, ?) "
       "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at "
       "WHERE kernel_results.expires_at <= ?")
GET = "SELECT value FROM kernel_results WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)"
DELETE = "DELETE FROM kernel_results WHERE key = ?"
SWEEP = "DELETE FROM kernel_results WHERE expires_at <= ?"
# The counter is kept as decimal text bytes (what Redis would return for it); an expired one
# starts again from zero. Without `expires` an existing expiry is kept.
INCR = """
INSERT INTO kernel_results (key, value, expires_at)
VALUES (:key, CAST(CAST(:amount AS TEXT) AS BLOB), :expires)
ON CONFLICT (key) DO UPDATE SET
    value = CAST(CAST(
        CASE WHEN expires_at IS NOT NULL AND expires_at <= :now THEN 0
             ELSE CAST(CAST(value AS TEXT) AS INTEGER) END + :amount AS TEXT) AS BLOB),
    expires_at = CASE WHEN :expires IS NOT NULL THEN :expires
                      WHEN expires_at <= :now THEN NULL
                      ELSE expires_at END
RETURNING CAST(CAST(value AS TEXT) AS INTEGER)
"""
#: expired rows are deleted by a write at most this often (reads ignore them meanwhile).
SWEEP_EVERY = 60.0


class SqliteResultStore(ResultStore):
    """``sqlite:///relative.db``, ``sqlite:////absolute.db``, or ``sqlite://`` (./kernel.db).

    Options: ``busy_timeout`` (30) and ``synchronous`` ("NORMAL"), as for the transport.
    """

    capabilities = RESULT_STORE_CAPABILITIES

    def __init__(self, url: str, options: Options | None = None) -> None:
        options = options or {}
        self.url = url
        path = path_from_url(url)
        self._db = Database(path, SCHEMA, *file_settings(options, "SQLite result store"))
        self._next_sweep = time.monotonic() + SWEEP_EVERY

    def __repr__(self) -> str:
        return f"<SqliteResultStore {self._db.path}>"

    def set(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        self._store(items, expires, replace=True)

    def add(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        self._store(items, expires, replace=False)

    def _store(self, items: Sequence[tuple[str, bytes]], expires: float | None,
               replace: bool) -> None:
        if not items:
            return
        now = time.time()
        expires_at = None if expires is None else now + expires
        with self._db.write() as conn:
            if replace:
                conn.executemany(SET, [(key, value, expires_at) for key, value in items])
            else:
                conn.executemany(ADD, [(key, value, expires_at, now) for key, value in items])
            if time.monotonic() >= self._next_sweep:
                self._next_sweep = time.monotonic() + SWEEP_EVERY
                conn.execute(SWEEP, (now,))
        self._db.notifier("results").notify()

    def get(self, key: str) -> bytes | None:
        with self._db.read() as conn:
            row = conn.execute(GET, (key, time.time())).fetchone()
        return None if row is None else bytes(row[0])

    def delete(self, keys: Sequence[str]) -> None:
        if keys:
            with self._db.write() as conn:
                conn.executemany(DELETE, [(key,) for key in keys])

    def incr(self, key: str, amount: int = 1, expires: float | None = None) -> int:
        now = time.time()
        params = {"key": key, "amount": int(amount), "now": now,
                  "expires": None if expires is None else now + expires}
        with self._db.write() as conn:
            value: int = conn.execute(INCR, params).fetchone()[0]
        self._db.notifier("results").notify()
        return value

    def wait(self, key: str, timeout: float | None, unless: bytes | None = None) -> bytes | None:
        """Woken at once by a `set` in this process; polls (1 ms backoff up to 50 ms) for
        writes by other processes."""
        deadline = math.inf if timeout is None else time.monotonic() + timeout
        poller = Poller(self._db, "results")
        while True:
            snapshot = poller.snapshot()
            value = self.get(key)
            if value is not None and value != unless:
                return value
            if time.monotonic() >= deadline:
                return None
            poller.sleep(snapshot, deadline)

    def cleanup(self) -> dict[str, int]:
        """Delete expired results now (writes also do it, once a minute)."""
        with self._db.write() as conn:
            return {"results": conn.execute(SWEEP, (time.time(),)).rowcount}

    def close(self) -> None:
        self._db.close()
