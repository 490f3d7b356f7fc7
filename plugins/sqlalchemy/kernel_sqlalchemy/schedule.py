"""The SQL schedule store: beat's leader lease, entries and tick state in three tables of a
PostgreSQL, MySQL/MariaDB or SQLite database, shared by every beat process (on any host) whose
``beat_schedule_store`` names it.

* ``kernel_beat_schedules``: one row per schedule (option ``schedule_key``, as the Redis
  store's): the lease's owner, fencing token and end, and the entries' version;
* ``kernel_beat_entries``: (schedule, name) -> the entry's data;
* ``kernel_beat_state``: (schedule, name) -> the due time of its last claimed tick, and how
  many were claimed.

Every change first updates its schedule's row, which locks it until the commit (a row lock on
PostgreSQL and MySQL, the write lock on SQLite), so changes to one schedule never interleave:
the lease is tested and taken, a tick tested against the lease's token and the entry's last
due and recorded, each in one transaction. Time is the database server's clock, read under
that lock: every beat process, on every host, goes by the same clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kernel.interfaces.schedule import (
    EntryState,
    Leader,
    ScheduleStore,
    check_due,
    check_ttl,
)
from kernel.plugin import ConfigurationError, OptionReader, Options, mask_url
from kernel_sqlalchemy.connection import Database
from kernel_sqlalchemy.dialects import binary, exact_string, server_time, upsert

T = TypeVar("T")

#: the schedule a store uses unless option ``schedule_key`` names another (one per beat group).
DEFAULT_KEY = "kernel.schedule"


def define_tables(schema: str | None) -> tuple[sa.Table, sa.Table, sa.Table]:
    """The schedules, entries and state tables (in `schema`, ``database_table_schemas``'s
    ``beat``)."""
    metadata = sa.MetaData()
    key = exact_string(255)
    schedules = sa.Table(
        "kernel_beat_schedules", metadata,
        sa.Column("schedule", key, primary_key=True),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("token", sa.BigInteger, nullable=False),
        sa.Column("expires", sa.Double, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        schema=schema)
    entries = sa.Table(
        "kernel_beat_entries", metadata,
        sa.Column("schedule", key, primary_key=True),
        sa.Column("name", key, primary_key=True),
        sa.Column("data", binary(), nullable=False),
        schema=schema)
    state = sa.Table(
        "kernel_beat_state", metadata,
        sa.Column("schedule", key, primary_key=True),
        sa.Column("name", key, primary_key=True),
        sa.Column("last_run", sa.Double, nullable=False),
        sa.Column("run_count", sa.BigInteger, nullable=False),
        schema=schema)
    return schedules, entries, state


class SqlScheduleStore(ScheduleStore):
    """``db+postgresql://...``, ``db+mysql://...``, ``db+sqlite:///file.db`` (Celery's URLs, as
    the result store's). Options: ``schedule_key`` (which schedule of the database this is),
    kernel-sqlalchemy's ``database_table_schemas`` (key ``beat``), ``database_engine_options``
    and ``database_create_tables_at_setup``. A schedule's row keeps the last token given after
    the lease ends, so tokens only grow across expiries, releases and restarts."""

    def __init__(self, url: str, options: Options | None = None) -> None:
        options = options or {}
        reader = OptionReader(options, "SQL schedule store")
        self.url = url
        self.key = reader.text("schedule_key", DEFAULT_KEY)
        if not self.key:
            raise ConfigurationError("SQL schedule store: option 'schedule_key' must name the "
                                     "schedule, not be empty")
        schemas = reader.get("database_table_schemas", None) or {}
        self._schedules, self._entries, self._state = define_tables(schemas.get("beat"))
        self._db = Database(url, reader.get("database_engine_options", {}),
                            reader.number("connection_timeout", 10.0, positive=True), 2,
                            "schedule database")
        self._ready = False
        if reader.boolean("database_create_tables_at_setup", True):
            self._prepare()

    def __repr__(self) -> str:
        return f"<SqlScheduleStore {mask_url(self.url)} {self.key!r}>"

    def _prepare(self) -> None:
        if not self._ready:
            self._db.run("create the schedule tables", self._create)
            self._ready = True

    def _create(self, conn: Connection) -> None:
        self._schedules.metadata.create_all(conn, checkfirst=True)
        upsert(conn, self._schedules, "schedule", [
            {"schedule": self.key, "owner": None, "token": 0, "expires": 0.0, "version": 0}],
            None)

    def _locked(self, conn: Connection) -> tuple[str | None, int, float, float]:
        """Lock this schedule's row until the commit: its owner, token and lease end, and the
        server's time now."""
        s = self._schedules
        conn.execute(sa.update(s).where(s.c.schedule == self.key).values(token=s.c.token))
        row = conn.execute(sa.select(s.c.owner, s.c.token, s.c.expires,
                                     server_time(conn.dialect.name))
                           .where(s.c.schedule == self.key)).one()
        return row[0], int(row[1]), float(row[2]), float(row[3])

    def _run(self, doing: str, work: Callable[[Connection], T], retry: bool = True) -> T:
        self._prepare()
        return self._db.run(doing, work, retry)

    # ------------------------------------------------------------------ the leader lease

    def acquire(self, owner: str, ttl: float) -> int | None:
        check_ttl(ttl)
        s = self._schedules

        def take(conn: Connection) -> int | None:
            held, token, expires, now = self._locked(conn)
            if held is not None and expires > now and held != owner:
                return None
            if held != owner or expires <= now:
                token += 1  # a new holder (or the same one after a lapse): a larger token
            conn.execute(sa.update(s).where(s.c.schedule == self.key)
                         .values(owner=owner, token=token, expires=now + ttl))
            return token

        # Not retried: a commit lost with its connection may have taken the lease, and the
        # token the caller did not hear of would stay unused (the next take moves past it).
        return self._run("take the beat lease", take, retry=False)

    def release(self, owner: str) -> None:
        s = self._schedules
        self._run("release the beat lease", lambda conn: conn.execute(
            sa.update(s).where(s.c.schedule == self.key, s.c.owner == owner)
            .values(owner=None, expires=0.0)))

    def leader(self) -> Leader | None:
        s = self._schedules

        def read(conn: Connection) -> Leader | None:
            held, token, expires, now = conn.execute(
                sa.select(s.c.owner, s.c.token, s.c.expires, server_time(conn.dialect.name))
                .where(s.c.schedule == self.key)).one()
            left = float(expires) - float(now)
            return None if held is None or left <= 0 else Leader(held, int(token), left)

        return self._run("read the beat lease", read)

    # ------------------------------------------------------------------ ticks

    def claim(self, entry: str, due: float, token: int) -> bool:
        check_due(due)
        t = self._state
        mine = sa.and_(t.c.schedule == self.key, t.c.name == entry)

        def record(conn: Connection) -> bool:
            held, current, expires, now = self._locked(conn)
            if held is None or expires <= now or current != token:
                return False
            last = conn.execute(sa.select(t.c.last_run).where(mine)).scalar()
            if last is not None and due <= float(last):
                return False
            if last is None:
                conn.execute(sa.insert(t).values(schedule=self.key, name=entry,
                                                 last_run=float(due), run_count=1))
            else:
                conn.execute(sa.update(t).where(mine).values(last_run=float(due),
                                                             run_count=t.c.run_count + 1))
            return True

        # Not retried: a claim whose commit was lost may have been recorded; sending the tick
        # then could send it twice, and skipping it is the failure the caller hears of.
        return self._run("claim a tick", record, retry=False)

    def states(self) -> dict[str, EntryState]:
        t = self._state
        rows = self._run("read the tick states", lambda conn: conn.execute(
            sa.select(t.c.name, t.c.last_run, t.c.run_count)
            .where(t.c.schedule == self.key)).all())
        return {name: EntryState(float(last), int(count)) for name, last, count in rows}

    # ------------------------------------------------------------------ entries

    def entries(self) -> dict[str, bytes]:
        e = self._entries
        rows = self._run("read the beat entries", lambda conn: conn.execute(
            sa.select(e.c.name, e.c.data).where(e.c.schedule == self.key)).all())
        return {name: bytes(data) for name, data in rows}

    def _bump(self, conn: Connection) -> None:
        s = self._schedules
        conn.execute(sa.update(s).where(s.c.schedule == self.key)
                     .values(version=s.c.version + 1))

    def put_entry(self, name: str, data: bytes) -> None:
        def put(conn: Connection) -> None:
            self._bump(conn)  # first: it locks the schedule's row
            upsert(conn, self._entries, ("schedule", "name"),
                   [{"schedule": self.key, "name": name, "data": bytes(data)}], sa.true())

        self._run("store a beat entry", put)

    def remove_entry(self, name: str) -> bool:
        e, t = self._entries, self._state

        def remove(conn: Connection) -> bool:
            self._locked(conn)
            conn.execute(sa.delete(t).where(t.c.schedule == self.key, t.c.name == name))
            gone = conn.execute(sa.delete(e).where(e.c.schedule == self.key,
                                                   e.c.name == name)).rowcount
            if gone:
                self._bump(conn)
            return bool(gone)

        return self._run("remove a beat entry", remove)

    def version(self) -> int:
        s = self._schedules
        value = self._run("read the beat entries' version", lambda conn: conn.execute(
            sa.select(s.c.version).where(s.c.schedule == self.key)).scalar_one())
        return int(value)

    def close(self) -> None:
        self._db.close()


__all__ = ["SqlScheduleStore"]
