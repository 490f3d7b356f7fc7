"""The SQLite transport: a broker in one file that several worker processes share.

One table holds every message. A row is *ready* (deliverable now, found through a partial index
ordered by queue, priority and arrival) or *waiting* (delayed until ``not_before``, or leased to a
consumer until ``lease_until``; found through a partial index on the time it becomes ready).
A fetch runs in one ``BEGIN IMMEDIATE`` transaction: it turns waiting rows whose time has come
ready again, then claims ready rows with ``UPDATE ... RETURNING``, so no message goes to two
consumers at once. Delays and leases live in the file, never in a process's memory.

A delivery's tag is its row id and the row's ``claim``, counted up at every fetch and never
down (``delivery_count`` goes down when a message is given back unrun): acting on a delivery
whose message has since gone to someone else (its lease ran out, it was given back) changes
nothing.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable, Sequence
from typing import Any

from kernel.errors import DecodeError
from kernel.interfaces.transport import (
    DEAD_LETTER_SUFFIX,
    Delivery,
    Outgoing,
    Subscription,
    Transport,
    clamp_priority,
)
from kernel.message import Envelope
from kernel.parsing import OptionReader
from kernel.specs import Options
from kernel.std.sqlite import TRANSPORT_CAPABILITIES
from kernel.std.sqlite.broadcast import SCHEMA as BROADCAST_SCHEMA
from kernel.std.sqlite.broadcast import Broadcasts
from kernel.std.sqlite.db import Database, Poller, file_settings, path_from_url

#: the dead-letter queue of queue ``q`` is ``q`` + this suffix, itself an ordinary queue.

SCHEMA = """
CREATE TABLE IF NOT EXISTS kernel_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL DEFAULT 0,
    ready INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until REAL,
    delivery_count INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    payload BLOB NOT NULL,
    claim INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS kernel_messages_ready
    ON kernel_messages (queue, priority DESC, id) WHERE ready = 1;
CREATE INDEX IF NOT EXISTS kernel_messages_waiting
    ON kernel_messages (coalesce(lease_until, not_before)) WHERE ready = 0;
"""
#: columns added since the table's first version (a file made before gets them).
ADDED = [("kernel_messages", "claim", "INTEGER NOT NULL DEFAULT 0")]

INSERT = ("INSERT INTO kernel_messages (queue, priority, not_before, ready, payload) "
          "VALUES (?, ?, ?, ?, ?)")
# Waiting rows whose delay or lease is over become ready (an expired lease: redelivery).
PROMOTE = ("UPDATE kernel_messages SET ready = 1, lease_owner = NULL, lease_until = NULL "
           "WHERE ready = 0 AND coalesce(lease_until, not_before) <= ?")
CLAIM = ("UPDATE kernel_messages SET ready = 0, lease_owner = ?, lease_until = ?, "
         "delivery_count = delivery_count + 1, claim = claim + 1 "
         "WHERE id IN (SELECT id FROM kernel_messages WHERE ready = 1 AND queue = ? "
         "ORDER BY priority DESC, id LIMIT ?) "
         "RETURNING id, claim, priority, delivery_count, payload")
NEXT_DUE = "SELECT min(coalesce(lease_until, not_before)) FROM kernel_messages WHERE ready = 0"
ACK = "DELETE FROM kernel_messages WHERE id = ?"
EXTEND = ("UPDATE kernel_messages SET lease_until = ? "
          "WHERE id = ? AND claim = ? AND ready = 0")
REQUEUE = ("UPDATE kernel_messages SET ready = 1, lease_owner = NULL, lease_until = NULL "
           "WHERE id = ? AND claim = ?")
RELEASE = ("UPDATE kernel_messages SET ready = 1, lease_owner = NULL, lease_until = NULL, "
           "delivery_count = delivery_count - 1 WHERE id = ? AND claim = ?")
DEAD = (f"UPDATE kernel_messages SET queue = queue || '{DEAD_LETTER_SUFFIX}', ready = 1, "
        "lease_owner = NULL, lease_until = NULL, reason = ? WHERE id = ? AND claim = ?")
# Waiting = ready, delayed, or leased by a consumer whose lease has run out. Each half of the
# union reads one partial index, so a long queue elsewhere is never scanned.
WAITING_IDS = ("SELECT id FROM kernel_messages WHERE ready = 1 AND queue = :queue UNION ALL "
               "SELECT id FROM kernel_messages WHERE ready = 0 AND queue = :queue "
               "AND (lease_until IS NULL OR lease_until <= :now)")
SIZE = f"SELECT count(*) FROM ({WAITING_IDS})"
PURGE = f"DELETE FROM kernel_messages WHERE id IN ({WAITING_IDS})"
DEAD_LETTERS = ("SELECT id, claim, delivery_count, reason, payload FROM kernel_messages "
                "WHERE ready = 1 AND queue = :queue UNION ALL "
                "SELECT id, claim, delivery_count, reason, payload FROM kernel_messages "
                "INDEXED BY kernel_messages_waiting "
                "WHERE ready = 0 AND queue = :queue ORDER BY id LIMIT :limit")

Row = tuple[Any, ...]


class SqliteTransport(Transport):
    """``sqlite:///relative.db``, ``sqlite:////absolute.db``, or ``sqlite://`` (./kernel.db).

    Options: ``lease_seconds`` (30): how long a fetched message stays with its consumer unless
    extended; ``busy_timeout`` (30): seconds to wait for another process's write; ``synchronous``
    ("NORMAL"): SQLite's durability level ("FULL" also survives a power cut, more slowly).
    """

    capabilities = TRANSPORT_CAPABILITIES

    def __init__(self, url: str, options: Options | None = None) -> None:
        options = options or {}
        self.url = url
        self.lease_seconds = OptionReader(options, "SQLite transport").number(
            "lease_seconds", 30.0, positive=True)
        path = path_from_url(url)
        self._db_settings = file_settings(options, "SQLite transport")
        self._db = Database(path, SCHEMA, *self._db_settings, added=ADDED)
        self._host = socket.gethostname()
        self._broadcasts: Broadcasts | None = None

    def __repr__(self) -> str:
        return f"<SqliteTransport {self._db.path}>"

    # ------------------------------------------------------------------ publish

    def publish(self, messages: Sequence[Outgoing]) -> None:
        if not messages:
            return
        now = time.time()
        rows = [
            (m.queue, clamp_priority(m.priority), m.not_before or 0.0,
             0 if m.not_before is not None and m.not_before > now else 1,
             m.envelope.to_json(m.queue))
            for m in messages
        ]
        with self._db.write() as conn:
            conn.executemany(INSERT, rows)
        self._db.notifier("queue").notify()

    # ------------------------------------------------------------------ consume

    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Delivery]:
        """Block until a message is ready: woken at once by a publish from this process, by
        polling (1 ms backoff up to 50 ms) for other processes, and at the time the earliest
        delayed message or lease falls due."""
        if limit <= 0 or not queues:
            return []
        deadline = time.monotonic() + max(0.0, timeout)
        poller = Poller(self._db, "queue")
        while True:
            snapshot = poller.snapshot()
            claimed, next_due = self._claim(queues, limit)
            if claimed:
                deliveries = self._decode(claimed)
                if deliveries:
                    return deliveries
                continue
            until = deadline
            if next_due is not None:
                until = min(until, time.monotonic() + max(0.0, next_due - time.time()))
            if time.monotonic() >= deadline:
                return []
            poller.sleep(snapshot, until)

    def _claim(self, queues: Sequence[str], limit: int) -> tuple[list[tuple[str, Row]], Any]:
        now = time.time()
        owner = f"{self._host}:{os.getpid()}"
        claimed: list[tuple[str, Row]] = []
        next_due = None
        with self._db.write() as conn:
            conn.execute(PROMOTE, (now,))
            for queue in queues:
                rows = conn.execute(
                    CLAIM, (owner, now + self.lease_seconds, queue, limit - len(claimed))
                ).fetchall()
                # RETURNING gives no order: restore priority, then arrival.
                rows.sort(key=lambda row: (-row[2], row[0]))
                claimed.extend((queue, row) for row in rows)
                if len(claimed) >= limit:
                    break
            if not claimed:
                next_due = conn.execute(NEXT_DUE).fetchone()[0]
        return claimed, next_due

    def _decode(self, claimed: Iterable[tuple[str, Row]]) -> list[Delivery]:
        deliveries: list[Delivery] = []
        broken: list[tuple[Delivery, str]] = []
        for queue, (row, claim, _priority, count, payload) in claimed:
            tag = (row, claim)
            try:
                envelope = Envelope.from_json(payload)
            except DecodeError as exc:
                # Not ours to run and never will be: straight to the dead-letter queue.
                broken.append((Delivery(tag, queue, Envelope(b"", {}), count), str(exc)))
                continue
            deliveries.append(Delivery(tag, queue, envelope, count))
        for delivery, reason in broken:
            self.reject(delivery, requeue=False, reason=reason)
        return deliveries

    # ------------------------------------------------------------------ settle

    def _run_many(self, sql: str, params: Iterable[tuple[Any, ...]]) -> None:
        with self._db.write() as conn:
            conn.executemany(sql, params)

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        if deliveries:
            self._run_many(ACK, [(d.tag[0],) for d in deliveries])

    def reject(self, delivery: Delivery, *, requeue: bool, reason: str = "") -> None:
        if requeue:
            self._run_many(REQUEUE, [delivery.tag])
            self._db.notifier("queue").notify()
        else:
            self._run_many(DEAD, [(reason, *delivery.tag)])

    def release(self, deliveries: Sequence[Delivery]) -> None:
        """Give back unstarted messages; their delivery does not count."""
        if deliveries:
            self._run_many(RELEASE, [d.tag for d in deliveries])
            self._db.notifier("queue").notify()

    def extend_lease(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        """Renew the lease to `seconds` from now. A delivery whose message was already
        redelivered elsewhere (its lease ran out first) is left alone."""
        if deliveries:
            until = time.time() + seconds
            self._run_many(EXTEND, [(until, *d.tag) for d in deliveries])

    # ------------------------------------------------------------------ inspect

    def size(self, queue: str) -> int:
        """Messages of `queue` waiting for a consumer: ready, delayed, and those whose lease
        ran out. Messages a live consumer holds are not counted."""
        with self._db.read() as conn:
            count: int = conn.execute(SIZE, {"queue": queue, "now": time.time()}).fetchone()[0]
            return count

    def purge(self, queue: str) -> int:
        """Delete the messages `size` counts; messages a consumer holds stay with it."""
        with self._db.write() as conn:
            deleted: int = conn.execute(PURGE, {"queue": queue, "now": time.time()}).rowcount
        return deleted

    def dead_letters(self, queue: str, limit: int = 100) -> list[Delivery]:
        """The oldest messages of ``queue + ".dead"``; ``extra["reason"]`` says why each died."""
        dead = queue + DEAD_LETTER_SUFFIX
        with self._db.read() as conn:
            rows = conn.execute(DEAD_LETTERS, {"queue": dead, "limit": limit}).fetchall()
        out = []
        for row, claim, count, reason, payload in rows:
            try:
                envelope = Envelope.from_json(payload)
            except DecodeError:
                raw = payload if isinstance(payload, bytes) else str(payload).encode()
                envelope = Envelope(raw, {})
            out.append(Delivery((row, claim), dead, envelope, count, {"reason": reason or ""}))
        return out

    # ------------------------------------------------------------------ broadcast

    def _fanout(self) -> Broadcasts:
        if self._broadcasts is None:
            self._broadcasts = Broadcasts(Database(self._db.path, BROADCAST_SCHEMA,
                                                 *self._db_settings))
        return self._broadcasts

    def broadcast(self, exchange: str, routing_key: str, envelope: Envelope) -> None:
        """Kept in the file for a minute; subscribers on this host read it from there."""
        self._fanout().send(exchange, routing_key, envelope)

    def subscribe(self, exchange: str, pattern: str = "#") -> Subscription:
        return self._fanout().subscribe(exchange, pattern)

    def close(self) -> None:
        self._db.close()
        if self._broadcasts is not None:
            self._broadcasts.db.close()


__all__ = ["DEAD_LETTER_SUFFIX", "SqliteTransport"]
