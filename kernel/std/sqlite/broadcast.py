"""Broadcast over the SQLite file: a table of recent broadcasts that subscribers read past
the last id they saw. Rows live for `KEEP_SECONDS`, so a subscriber paused longer than that
misses messages (fanout is at-most-once); nobody has to acknowledge anything."""

from __future__ import annotations

import time

from kernel.errors import DecodeError
from kernel.interfaces.transport import Subscription, topic_matches
from kernel.message import Envelope
from kernel.std.sqlite.db import Database, Poller

SCHEMA = """
CREATE TABLE IF NOT EXISTS kernel_broadcasts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    exchange TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    sent REAL NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS kernel_broadcasts_exchange ON kernel_broadcasts (exchange, id);
"""
KEEP_SECONDS = 60.0
CHANNEL = "broadcast"


class Broadcasts:
    """The broadcast table of one database file."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._next_prune = 0.0

    def send(self, exchange: str, routing_key: str, envelope: Envelope) -> None:
        now = time.time()
        with self.db.write() as conn:
            conn.execute("INSERT INTO kernel_broadcasts (exchange, routing_key, sent, payload) "
                         "VALUES (?, ?, ?, ?)",
                         (exchange, routing_key, now, envelope.to_json(routing_key, exchange)))
            if time.monotonic() >= self._next_prune:
                self._next_prune = time.monotonic() + KEEP_SECONDS / 6
                conn.execute("DELETE FROM kernel_broadcasts WHERE sent < ?", (now - KEEP_SECONDS,))
        self.db.notifier(CHANNEL).notify()

    def subscribe(self, exchange: str, pattern: str) -> SqliteSubscription:
        with self.db.read() as conn:
            last: int = conn.execute("SELECT coalesce(max(id), 0) FROM kernel_broadcasts"
                                     ).fetchone()[0]
        return SqliteSubscription(self.db, exchange, pattern, last)


class SqliteSubscription(Subscription):
    """Woken at once by a broadcast from this process; polls (1 ms backoff up to 50 ms) for
    broadcasts of other processes."""

    def __init__(self, db: Database, exchange: str, pattern: str, last: int) -> None:
        self._db = db
        self._exchange = exchange
        self._pattern = pattern
        self._last = last
        self._poller = Poller(db, CHANNEL)
        self._closed = False

    def get(self, timeout: float) -> list[tuple[str, Envelope]]:
        deadline = time.monotonic() + max(0.0, timeout)
        while not self._closed:
            snapshot = self._poller.snapshot()
            with self._db.read() as conn:
                rows = conn.execute("SELECT id, routing_key, payload FROM kernel_broadcasts "
                                    "WHERE exchange = ? AND id > ? ORDER BY id",
                                    (self._exchange, self._last)).fetchall()
            got = []
            for row_id, key, payload in rows:
                self._last = row_id
                if topic_matches(self._pattern, key):
                    try:
                        got.append((key, Envelope.from_json(payload)))
                    except DecodeError:
                        continue  # not a message anyone could read; the sender logged nothing
            if got:
                return got
            if time.monotonic() >= deadline:
                break
            self._poller.sleep(snapshot, deadline)
        return []

    def close(self) -> None:
        self._closed = True
