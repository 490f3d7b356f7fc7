"""The ``sqlite://`` schedule store: beat's leader lease, entries and tick state in the embedded
SQLite file, shared by every beat process on the host that opens it.

Every change is one write transaction (``BEGIN IMMEDIATE``), so two processes never interleave a
read and a write: the lease is tested and taken, a tick is tested against the lease's token and
the entry's last claimed due and recorded, each in one step. The lease runs on the host's wall
clock, read inside that transaction; every process sharing the file shares the clock (a file
cannot be shared across hosts safely anyway). A clock stepped backwards lengthens a lease by the
step, one stepped forwards shortens it.
"""

from __future__ import annotations

import time

from kernel.interfaces.schedule import (
    EntryState,
    Leader,
    ScheduleStore,
    check_due,
    check_ttl,
)
from kernel.specs import Options
from kernel.std.sqlite.db import Database, file_settings, path_from_url

SCHEMA = """
CREATE TABLE IF NOT EXISTS kernel_beat_lease (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    owner TEXT,
    token INTEGER NOT NULL,
    expires REAL NOT NULL
);
INSERT OR IGNORE INTO kernel_beat_lease (id, owner, token, expires) VALUES (1, NULL, 0, 0);
CREATE TABLE IF NOT EXISTS kernel_beat_entries (
    name TEXT PRIMARY KEY,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS kernel_beat_state (
    name TEXT PRIMARY KEY,
    last_run REAL NOT NULL,
    run_count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS kernel_beat_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT OR IGNORE INTO kernel_beat_version (id, version) VALUES (1, 0);
"""


class SqliteScheduleStore(ScheduleStore):
    """``sqlite:///path.db`` (the file the broker uses, by default); options: ``busy_timeout``
    and ``synchronous``, as the other SQLite stores. The lease row keeps the last token given
    after it ends, so tokens only grow across expiries, releases and restarts."""

    def __init__(self, url: str, options: Options | None = None) -> None:
        self.url = url
        self._db = Database(path_from_url(url), SCHEMA,
                            *file_settings(options or {}, "SQLite schedule store"))

    def __repr__(self) -> str:
        return f"<SqliteScheduleStore {self._db.path}>"

    # ------------------------------------------------------------------ the leader lease

    def acquire(self, owner: str, ttl: float) -> int | None:
        check_ttl(ttl)
        with self._db.write() as conn:
            now = time.time()
            held, token, expires = conn.execute(
                "SELECT owner, token, expires FROM kernel_beat_lease WHERE id = 1").fetchone()
            if held is not None and expires > now and held != owner:
                return None
            if held != owner or expires <= now:
                token += 1  # a new holder (or the same one after a lapse): a larger token
            conn.execute("UPDATE kernel_beat_lease SET owner = ?, token = ?, expires = ? "
                         "WHERE id = 1", (owner, token, now + ttl))
            return int(token)

    def release(self, owner: str) -> None:
        with self._db.write() as conn:
            conn.execute("UPDATE kernel_beat_lease SET owner = NULL, expires = 0 "
                         "WHERE id = 1 AND owner = ?", (owner,))

    def leader(self) -> Leader | None:
        with self._db.read() as conn:
            held, token, expires = conn.execute(
                "SELECT owner, token, expires FROM kernel_beat_lease WHERE id = 1").fetchone()
        left = expires - time.time()
        if held is None or left <= 0:
            return None
        return Leader(held, int(token), left)

    # ------------------------------------------------------------------ ticks

    def claim(self, entry: str, due: float, token: int) -> bool:
        check_due(due)
        with self._db.write() as conn:
            held, current, expires = conn.execute(
                "SELECT owner, token, expires FROM kernel_beat_lease WHERE id = 1").fetchone()
            if held is None or expires <= time.time() or current != token:
                return False
            row = conn.execute("SELECT last_run FROM kernel_beat_state WHERE name = ?",
                               (entry,)).fetchone()
            if row is not None and due <= row[0]:
                return False
            conn.execute("INSERT INTO kernel_beat_state (name, last_run, run_count) "
                         "VALUES (?, ?, 1) ON CONFLICT (name) DO UPDATE SET "
                         "last_run = excluded.last_run, run_count = run_count + 1",
                         (entry, float(due)))
            return True

    def states(self) -> dict[str, EntryState]:
        with self._db.read() as conn:
            rows = conn.execute("SELECT name, last_run, run_count FROM kernel_beat_state")
            return {name: EntryState(float(last), int(count)) for name, last, count in rows}

    # ------------------------------------------------------------------ entries

    def entries(self) -> dict[str, bytes]:
        with self._db.read() as conn:
            rows = conn.execute("SELECT name, data FROM kernel_beat_entries")
            return {name: bytes(data) for name, data in rows}

    def put_entry(self, name: str, data: bytes) -> None:
        with self._db.write() as conn:
            conn.execute("INSERT INTO kernel_beat_entries (name, data) VALUES (?, ?) "
                         "ON CONFLICT (name) DO UPDATE SET data = excluded.data",
                         (name, bytes(data)))
            conn.execute("UPDATE kernel_beat_version SET version = version + 1 WHERE id = 1")

    def remove_entry(self, name: str) -> bool:
        with self._db.write() as conn:
            conn.execute("DELETE FROM kernel_beat_state WHERE name = ?", (name,))
            if conn.execute("DELETE FROM kernel_beat_entries WHERE name = ?",
                            (name,)).rowcount == 0:
                return False
            conn.execute("UPDATE kernel_beat_version SET version = version + 1 WHERE id = 1")
            return True

    def version(self) -> int:
        with self._db.read() as conn:
            value: int = conn.execute(
                "SELECT version FROM kernel_beat_version WHERE id = 1").fetchone()[0]
            return value

    def close(self) -> None:
        self._db.close()


__all__ = ["SqliteScheduleStore"]
