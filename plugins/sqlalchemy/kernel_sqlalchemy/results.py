"""The SQL result store: task results in Celery's ``celery_taskmeta``, saved groups in
``celery_tasksetmeta``, every other key (chord counters, revocations, unique claims) in
kernel's ``kernel_kv``; through SQLAlchemy 2 on PostgreSQL, MySQL/MariaDB and SQLite."""

from __future__ import annotations

import io
import pickle
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection

from kernel.interfaces.results import ResultStore
from kernel.plugin import (
    ConfigurationError,
    DecodeError,
    GroupFields,
    OptionReader,
    Options,
    RecordFields,
    TaskFields,
    key_kind,
    mask_url,
)
from kernel_sqlalchemy import notify
from kernel_sqlalchemy.connection import Database
from kernel_sqlalchemy.dialects import (
    binary,
    exact_string,
    long_text,
    timestamp,
    Upsert,
)
from kernel_sqlalchemy.notify import Listener
from kernel_sqlalchemy.plugin import CAPABILITIES

#: Celery's table names (``database_table_names`` keys ``task`` and ``group``) and kernel's.
TABLE_NAMES = {"task": "celery_taskmeta", "group": "celery_tasksetmeta", "kv": "kernel_kv"}
#: expired kernel_kv rows are deleted by a write at most this often (reads ignore them).
SWEEP_EVERY = 60.0


def define_tables(names: Mapping[str, str], schemas: Mapping[str, str | None]
                  ) -> tuple[sa.Table, sa.Table, sa.Table]:
    """Celery's task and group tables (those of Celery 5.5+ with ``result_extended``, whose
    columns a Celery without it ignores) and kernel's key-value table."""
    metadata = sa.MetaData()
    task_schema, group_schema = schemas.get("task"), schemas.get("group")
    # Celery's rows take their ids from these sequences on PostgreSQL: same names, so either
    # side may create the tables.
    task = sa.Table(
        names["task"], metadata,
        sa.Column("id", sa.Integer, sa.Sequence("task_id_sequence", schema=task_schema),
                  primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(155), unique=True),
        sa.Column("status", sa.String(50)),
        sa.Column("result", binary(), nullable=True),
        sa.Column("date_done", timestamp(), nullable=True, index=True),
        sa.Column("traceback", long_text(), nullable=True),
        sa.Column("children", binary(), nullable=True),
        sa.Column("name", sa.String(155), nullable=True),
        sa.Column("args", binary(), nullable=True),
        sa.Column("kwargs", binary(), nullable=True),
        sa.Column("worker", sa.String(155), nullable=True),
        sa.Column("retries", sa.Integer, nullable=True),
        sa.Column("queue", sa.String(155), nullable=True),
        sa.Column("stamps", binary(), nullable=True),
        schema=task_schema, sqlite_autoincrement=True)
    group = sa.Table(
        names["group"], metadata,
        sa.Column("id", sa.Integer, sa.Sequence("taskset_id_sequence", schema=group_schema),
                  primary_key=True, autoincrement=True),
        sa.Column("taskset_id", sa.String(155), unique=True),
        sa.Column("result", binary(), nullable=True),
        sa.Column("date_done", timestamp(), nullable=True, index=True),
        schema=group_schema, sqlite_autoincrement=True)
    kv = sa.Table(
        names["kv"], metadata,
        sa.Column("key", exact_string(512), primary_key=True),
        sa.Column("value", binary(), nullable=False),
        sa.Column("expires_at", sa.Double, nullable=True, index=True),
        schema=schemas.get("kv"))
    return task, group, kv


class _PlainUnpickler(pickle.Unpickler):
    """Reads pickles of plain values only (what Celery before 5.7 kept in ``result`` for a
    JSON app: numbers, text, lists, dicts, an exception as its dict): a pickle naming any
    class or function is refused, so reading a row never runs code from the database."""

    def find_class(self, module: str, name: str) -> Any:
        raise DecodeError(f"a pickled result names {module}.{name}; only plain values are "
                          f"read from pickles (set result_serializer to pickle for others)")


def _unpickle_plain(data: bytes) -> Any:
    try:
        return _PlainUnpickler(io.BytesIO(data)).load()
    except DecodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - every unpickling failure, one sentence
        raise DecodeError(f"a pickled result does not load ({exc}); check what wrote the "
                          f"row") from None


def _naive_utc(moment: datetime) -> datetime:
    # The columns are TIMESTAMP WITHOUT TIME ZONE / DATETIME holding UTC, as Celery writes them.
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


class SqlResultStore(ResultStore):
    """``db+postgresql://user:password@host/db``, ``db+mysql://...``, ``db+sqlite:///file.db``
    (Celery's URLs; a driver may be named: ``db+postgresql+psycopg://``).

    Task records are kept in Celery's columns, decoded with the app's result serializer
    (``options["record_fields"]``), so a Celery worker's rows read as kernel records and
    kernel's as Celery's. Task and group rows expire ``result_expires`` after their
    ``date_done`` (Celery's rule): reads MUST NOT return them after that and `cleanup` deletes
    them; other keys expire with the `expires` of the call that stored them.

    Options: Celery's ``database_table_names``, ``database_table_schemas``,
    ``database_create_tables_at_setup`` (True: create missing tables now; False: on first
    use), ``database_engine_options`` (for ``create_engine``); the pool keeps
    ``worker_concurrency`` connections (5 when unset).
    """

    capabilities = CAPABILITIES

    def __init__(self, url: str, options: Options | None = None) -> None:
        options = options or {}
        reader = OptionReader(options, "SQLAlchemy result store")
        self.url = url
        fields = options.get("record_fields")
        if not isinstance(fields, RecordFields):
            raise ConfigurationError("the SQLAlchemy result store needs options['record_fields'] "
                                     "(the App gives it): create it through App(results=...)")
        self.fields = fields
        self.expires = reader.duration("result_expires", None)
        names = {**TABLE_NAMES, **self._mapping(reader, "database_table_names")}
        schemas = self._mapping(reader, "database_table_schemas")
        self._task, self._group, self._kv = define_tables(names, schemas)
        timeout = reader.number("connection_timeout", 10.0, positive=True)
        self._db = Database(url, self._mapping(reader, "database_engine_options"), timeout,
                            reader.integer("worker_concurrency", 0, minimum=0) or 5,
                            "result database")
        self._dialect = self._db.sa_url.get_backend_name()
        self._upserts: dict[tuple[str, tuple[str, ...], bool, bool], Upsert] = {}
        self._notifies: dict[Upsert, sa.Executable] = {}
        self._reads: dict[str, sa.Select[Any]] = {}
        #: on PostgreSQL with psycopg 3, waiting clients are woken by the write (NOTIFY).
        self._listener = (Listener(self._db.sa_url, timeout)
                          if notify.supported(self._db.sa_url) else None)
        if self._listener is not None:
            self.capabilities = replace(CAPABILITIES, push_wait=True)
        #: write ``result`` columns as Celery before 5.7 reads them (its PickleType).
        self._pickled = reader.boolean("database_pickled_results", False)
        #: the columns the task table has (Celery creates it without the extended ones).
        self._task_columns: frozenset[str] | None = None
        self._next_sweep = time.monotonic() + SWEEP_EVERY
        if reader.boolean("database_create_tables_at_setup", True):
            self._prepared()

    @staticmethod
    def _mapping(reader: OptionReader, name: str) -> dict[str, Any]:
        value = reader.get(name, None) or {}
        if not isinstance(value, Mapping):
            raise ConfigurationError(f"SQLAlchemy result store: option {name} must be a dict, "
                                     f"not {type(value).__name__}")
        return dict(value)

    def __repr__(self) -> str:
        return f"<SqlResultStore {mask_url(self.url)}>"

    def _prepared(self) -> frozenset[str]:
        """Create the missing tables (once) and learn the task table's columns."""
        if self._task_columns is None:
            self._task_columns = self._db.run("create the result tables", self._create)
        return self._task_columns

    def _create(self, conn: Connection) -> frozenset[str]:
        self._task.metadata.create_all(conn, checkfirst=True)
        columns = sa.inspect(conn).get_columns(self._task.name, schema=self._task.schema)
        return frozenset(c["name"] for c in columns)

    # ------------------------------------------------------------------ rows

    def _cutoff(self) -> datetime | None:
        """Task and group rows done before this are expired (None: results never expire)."""
        if self.expires is None:
            return None
        return _naive_utc(datetime.now(timezone.utc) - timedelta(seconds=self.expires))

    def _task_row(self, task_id: str, data: bytes, now: datetime) -> dict[str, Any]:
        task = self.fields.task(data)
        # A task not ready yet has no date_done in its record; its row keeps when it was
        # written, so expiry and the cleanup find tasks that never ran.
        done = task.date_done if task.date_done is not None else now
        dumps = self.fields.dumps
        row: dict[str, Any] = {
            "task_id": task_id, "status": task.status, "result": self._dump_result(task.result),
            "date_done": _naive_utc(done), "traceback": task.traceback,
            "children": dumps(task.children) if task.children else None,
            "name": task.name, "args": None if task.args is None else dumps(task.args),
            "kwargs": None if task.kwargs is None else dumps(task.kwargs),
            "worker": task.worker, "retries": task.retries, "queue": task.queue,
        }
        columns = self._prepared()
        return {k: v for k, v in row.items() if k in columns}

    def _dump_result(self, value: Any) -> bytes:
        if self._pickled:
            return pickle.dumps(value, protocol=4)
        return self.fields.dumps(value)

    def _load_result(self, data: bytes, what: str) -> Any:
        """A ``result`` column: the result serializer's bytes, or (from Celery before 5.7, or
        with ``database_pickled_results``) a pickle of plain values."""
        try:
            return self.fields.loads(data, what)
        except DecodeError:
            if data[:1] != b"\x80":  # every pickle of protocol 2 and later starts so
                raise
            return _unpickle_plain(data)

    def _task_record(self, row: Mapping[str, Any]) -> bytes:
        def blob(name: str) -> Any:
            value = row.get(name)
            what = f"column {name} of task {row['task_id']}"
            return None if value is None else self.fields.loads(bytes(value), what)

        children = blob("children")
        return self.fields.task_record(TaskFields(
            task_id=row["task_id"], status=row["status"] or "PENDING",
            result=None if row["result"] is None else self._load_result(
                bytes(row["result"]), f"the result of task {row['task_id']}"),
            traceback=row["traceback"],
            date_done=None if row["date_done"] is None else
            row["date_done"].replace(tzinfo=timezone.utc),
            children=list(children) if children else None,
            name=row.get("name"), args=blob("args"), kwargs=blob("kwargs"),
            worker=row.get("worker"), retries=row.get("retries"), queue=row.get("queue")))

    def _group_row(self, group_id: str, data: bytes, now: datetime) -> dict[str, Any]:
        group = self.fields.group(group_id, data)
        return {"taskset_id": group_id, "result": self._dump_result(group.result),
                "date_done": _naive_utc(group.date_done or now)}

    # ------------------------------------------------------------------ writes

    def set(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        self._store(items, expires, replace=True)

    def add(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        self._store(items, expires, replace=False)

    def _store(self, items: Sequence[tuple[str, bytes]], expires: float | None,
               replace: bool) -> None:
        if not items:
            return
        self._prepared()
        now = datetime.now(timezone.utc)
        epoch = now.timestamp()
        tasks, groups, rest = [], [], []
        written: list[tuple[str, dict[str, Any] | None]] = []  # what listeners are told
        for key, value in items:
            kind = key_kind(key)
            task_row = None
            if kind is None:
                rest.append({"key": key, "value": value,
                             "expires_at": None if expires is None else epoch + expires})
            elif kind[0] == "task":
                task_row = self._task_row(kind[1], value, now)
                tasks.append(task_row)
            else:
                groups.append(self._group_row(kind[1], value, now))
            written.append((key, task_row))
        cutoff = self._cutoff()
        sweep = time.monotonic() >= self._next_sweep
        if sweep:
            self._next_sweep = time.monotonic() + SWEEP_EVERY
        # What the statements' conditions bind, in every row.
        bound = {"kernel_cutoff": cutoff, "kernel_now": epoch}
        batches = [(self._upsert(table, key, tuple(rows[0]), replace, cutoff is not None),
                    [{**row, **bound} for row in rows])
                   for table, rows, key in ((self._task, tasks, "task_id"),
                                            (self._group, groups, "taskset_id"),
                                            (self._kv, rest, "key")) if rows]
        # Waiters in any process wake at the commit; a task's record goes with its key as a
        # read would return it. add's use is the PENDING record a client writes as it sends,
        # which waiters skip: nobody is woken for it (one waiting for any value sees it at its
        # next look).
        changes = (notify.payloads([(key, None if row is None else self._task_record(row))
                                    for key, row in written])
                   if replace and self._dialect == "postgresql" else [])

        if not sweep and len(batches) == 1 and len(batches[0][1]) == 1:
            # The common case, one row, is one statement (an upsert, on PostgreSQL with its
            # NOTIFY around it): its own transaction, and safe to repeat.
            upsert, rows = batches[0]
            stmt: sa.Executable = upsert.statement
            params = rows[0]
            if changes:
                stmt = self._notifying(upsert)
                params = {**params, "kernel_payloads": changes}
            self._db.run("store results", lambda conn: conn.execute(stmt, params), single=True)
            return

        def write(conn: Connection) -> None:
            for upsert, rows in batches:
                upsert.run(conn, rows)
            if sweep:
                conn.execute(self._kv.delete().where(self._kv.c.expires_at <= epoch))
            if changes:
                conn.execute(notify.STATEMENT, {"kernel_payloads": changes})

        self._db.run("store results", write)

    def _upsert(self, table: sa.Table, key: str, columns: tuple[str, ...], replace: bool,
                expiring: bool) -> Upsert:
        """The statement that stores rows of `columns` in `table` (made once): `replace`
        whatever is there, or only a row that expired (`add`)."""
        found = self._upserts.get((table.name, columns, replace, expiring))
        if found is None:
            when: sa.ColumnElement[bool] | None
            if replace:
                when = sa.true()
            elif table is self._kv:
                when = sa.and_(table.c.expires_at.is_not(None),
                               table.c.expires_at <= sa.bindparam("kernel_now"))
            else:
                when = (table.c.date_done < sa.bindparam("kernel_cutoff", type_=timestamp())
                        if expiring else None)
            found = Upsert(self._dialect, table, key, columns, when)
            self._upserts[(table.name, columns, replace, expiring)] = found
        return found

    def _notifying(self, upsert: Upsert) -> sa.Executable:
        """`upsert` and the notification of what it stored, one statement (PostgreSQL)."""
        found = self._notifies.get(upsert)
        if found is None:
            found = self._notifies[upsert] = notify.STATEMENT.add_cte(
                upsert.statement.cte("written"))
        return found

    # ------------------------------------------------------------------ reads

    def get(self, key: str) -> bytes | None:
        kind = key_kind(key)
        cutoff = self._cutoff()
        query = self._reads.get(kind[0] if kind else "kv")
        if query is None:
            query = self._reads[kind[0] if kind else "kv"] = self._read(kind)
        params = {"kernel_key": kind[1] if kind else key, "kernel_cutoff": cutoff,
                  "kernel_now": time.time()}
        if kind is None:
            value = self._db.run("read a result",
                                 lambda conn: conn.execute(query, params).scalar(), single=True)
            return None if value is None else bytes(value)
        row = self._db.run("read a result",
                           lambda conn: conn.execute(query, params).mappings().first(),
                           single=True)
        if row is None:
            return None
        if kind[0] == "task":
            return self._task_record(dict(row))
        result = None if row["result"] is None else self._load_result(
            bytes(row["result"]), f"saved group {kind[1]}")
        done = row["date_done"]
        return self.fields.group_record(GroupFields(
            kind[1], result, None if done is None else done.replace(tzinfo=timezone.utc)))

    def _read(self, kind: tuple[str, str] | None) -> sa.Select[Any]:
        """The query that reads a key of `kind` (made once; the key, the cutoff and the time
        bound as ``kernel_key``, ``kernel_cutoff``, ``kernel_now``)."""
        key: sa.BindParameter[str] = sa.bindparam("kernel_key", type_=sa.String())
        if kind is None:
            kv = self._kv
            return sa.select(kv.c.value).where(
                kv.c.key == key, sa.or_(kv.c.expires_at.is_(None),
                                        kv.c.expires_at > sa.bindparam("kernel_now")))
        table = self._task if kind[0] == "task" else self._group
        ident = table.c.task_id if kind[0] == "task" else table.c.taskset_id
        columns = [c for c in table.c if kind[0] == "group" or c.name in self._prepared()]
        select = sa.select(*columns).where(ident == key)
        if self.expires is not None:
            select = select.where(sa.or_(
                table.c.date_done.is_(None),
                table.c.date_done >= sa.bindparam("kernel_cutoff", type_=timestamp())))
        return select

    def delete(self, keys: Sequence[str]) -> None:
        by_table: dict[str, list[str]] = {"task": [], "group": [], "kv": []}
        for key in keys:
            kind = key_kind(key)
            if kind is None:
                by_table["kv"].append(key)
            else:
                by_table[kind[0]].append(kind[1])
        if not keys:
            return
        self._prepared()

        def forget(conn: Connection) -> None:
            for table, column, found in ((self._task, "task_id", by_table["task"]),
                                         (self._group, "taskset_id", by_table["group"]),
                                         (self._kv, "key", by_table["kv"])):
                if found:
                    conn.execute(table.delete().where(table.c[column].in_(found)))

        self._db.run("forget results", forget)

    # ------------------------------------------------------------------ counters

    def incr(self, key: str, amount: int = 1, expires: float | None = None) -> int:
        """One upsert that adds to the counter (read back with RETURNING, or in the same
        transaction on MySQL, whose row lock keeps other writers out until the commit)."""
        if key_kind(key) is not None:
            raise ConfigurationError(f"{key!r} is a result key, not a counter; counters live "
                                     f"under kernel's own keys")
        self._prepared()
        kv = self._kv
        now = time.time()
        row = {"key": key, "value": str(int(amount)).encode(),
               "expires_at": None if expires is None else now + expires}
        expired = sa.and_(kv.c.expires_at.is_not(None), kv.c.expires_at <= now)

        def count(conn: Connection) -> int:
            dialect = conn.dialect.name
            if dialect == "postgresql":
                current: Any = sa.cast(sa.func.convert_from(kv.c.value, "UTF8"), sa.BigInteger)
            else:
                current = sa.cast(sa.cast(kv.c.value, sa.String), sa.BigInteger)
            total = sa.case((expired, 0), else_=current) + int(amount)
            if dialect == "postgresql":
                value: Any = sa.func.convert_to(sa.cast(total, sa.Text), "UTF8")
            elif dialect == "sqlite":
                value = sa.cast(sa.cast(total, sa.Text), sa.LargeBinary)
            else:
                value = sa.cast(total, sa.String)
            if dialect in ("postgresql", "sqlite"):
                insert = (postgresql.insert(kv) if dialect == "postgresql"
                          else sqlite.insert(kv))
                new_expiry = insert.excluded.expires_at
                stmt = insert.values(row).on_conflict_do_update(
                    index_elements=[kv.c.key],
                    set_={"value": value, "expires_at": sa.case(
                        (new_expiry.is_not(None), new_expiry), (expired, None),
                        else_=kv.c.expires_at)}).returning(kv.c.value)
                return int(bytes(conn.execute(stmt).scalar_one()))
            minsert = mysql.insert(kv).values(row)
            new_expiry = minsert.inserted.expires_at
            conn.execute(minsert.on_duplicate_key_update([
                ("value", value),  # before expires_at, which it reads
                ("expires_at", sa.case((new_expiry.is_not(None), new_expiry), (expired, None),
                                       else_=kv.c.expires_at))]))
            return int(bytes(conn.execute(sa.select(kv.c.value).where(kv.c.key == key))
                             .scalar_one()))

        # Not retried: a commit lost with its connection may have counted already.
        return self._db.run("count", count, retry=False)

    # ------------------------------------------------------------------ upkeep

    def cleanup(self) -> dict[str, int]:
        """Delete what has expired: task and group rows done more than ``result_expires``
        ago (what Celery's ``celery.backend_cleanup`` deletes) and expired kernel_kv rows.
        Returns the rows deleted per table role."""
        self._prepared()
        cutoff = self._cutoff()
        now = time.time()

        def sweep(conn: Connection) -> dict[str, int]:
            deleted = {"task": 0, "group": 0}
            if cutoff is not None:
                deleted["task"] = conn.execute(
                    self._task.delete().where(self._task.c.date_done < cutoff)).rowcount
                deleted["group"] = conn.execute(
                    self._group.delete().where(self._group.c.date_done < cutoff)).rowcount
            deleted["kv"] = conn.execute(
                self._kv.delete().where(self._kv.c.expires_at <= now)).rowcount
            return deleted

        return self._db.run("delete expired results", sweep)

    def wait(self, key: str, timeout: float | None, unless: bytes | None = None) -> bytes | None:
        if self._listener is None:
            return super().wait(key, timeout, unless)
        return notify.wait(self._listener, self.get, key, timeout, unless)

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        self._db.close()
