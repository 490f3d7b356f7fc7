"""The Cassandra result store, in Celery's Cassandra backend's layout.

A task's records are rows of Celery's table (``cassandra_table``)::

    task_id text, status text, result blob, date_done timestamp, traceback blob, children blob,
    PRIMARY KEY ((task_id), date_done)  WITH CLUSTERING ORDER BY (date_done DESC)

one row per write, the newest (by ``date_done``) being the task's state, as Celery writes and
reads them; ``result``, ``traceback`` and ``children`` hold the result serializer's bytes.
Celery's table has no place for anything else, so every other key (saved groups, which Celery's
Cassandra backend cannot save, and kernel's own: revocations, counters) is a row
``(key text PRIMARY KEY, value blob)`` of the table ``<cassandra_table>_kernel``. Both tables
are created on first use (``IF NOT EXISTS``), as Celery creates its own; the keyspace never is.

Expiry is Cassandra's ``USING TTL`` (whole seconds, rounded up): ``cassandra_entry_ttl`` for a
task's rows when set (Celery's), else the expiry kernel asks for (``result_expires``).

`add` is a lightweight transaction (``INSERT ... IF NOT EXISTS``). For a task, it writes the
row at ``date_done`` 1970-01-01, which sorts below every row a worker writes: a client's late
PENDING never shadows the result. Counters read and write (not atomic: see the plugin's
capabilities).

Each process has its own cluster connection (a forked child makes its own).
"""

from __future__ import annotations

import math
import re
import os
import threading
from functools import partial
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from kernel.interfaces.results import ResultStore
from kernel.plugin import (
    ConfigurationError,
    ConnectionFailed,
    KernelError,
    OptionReader,
    Options,
    RecordFields,
    TaskFields,
    key_kind,
    mask_url,
    retry_within,
)
from kernel_cassandra.plugin import RESULT_STORE_CAPABILITIES

T = TypeVar("T")

DEFAULT_PORT = 9042

#: the date_done of a row `add` writes: below every row a worker writes.
BOTTOM = datetime(1970, 1, 1, tzinfo=timezone.utc)

CREATE_TASKS = ("CREATE TABLE IF NOT EXISTS {table} (task_id text, status text, result blob, "
                "date_done timestamp, traceback blob, children blob, "
                "PRIMARY KEY ((task_id), date_done)) "
                "WITH CLUSTERING ORDER BY (date_done DESC)")
CREATE_KEYS = "CREATE TABLE IF NOT EXISTS {table}_kernel (key text PRIMARY KEY, value blob)"
INSERT_TASK = ("INSERT INTO {table} (task_id, status, result, date_done, traceback, children) "
               "VALUES (%s, %s, %s, %s, %s, %s)")
SELECT_TASK = ("SELECT status, result, date_done, traceback, children FROM {table} "
               "WHERE task_id = %s")
DELETE_TASK = "DELETE FROM {table} WHERE task_id = %s"
INSERT_KEY = "INSERT INTO {table}_kernel (key, value) VALUES (%s, %s)"
SELECT_KEY = "SELECT value FROM {table}_kernel WHERE key = %s"
DELETE_KEY = "DELETE FROM {table}_kernel WHERE key = %s"


def _ttl(expires: float | None) -> str:
    return "" if expires is None else f" USING TTL {max(1, math.ceil(expires))}"


def _name(value: str, what: str) -> str:
    if not value or not (value.replace("_", "a").isalnum() and value[0].isalpha()):
        raise ConfigurationError(
            f"{value!r} is not a {what} name Cassandra takes unquoted: use letters, digits and "
            f"underscores, starting with a letter (set cassandra_{what})")
    return value


def _millis(moment: datetime) -> datetime:
    """`moment` as Cassandra keeps a timestamp: to the millisecond."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class CassandraStore(ResultStore):
    """``cassandra://`` with Celery's settings (``cassandra_servers``, ``cassandra_port``,
    ``cassandra_keyspace``, ``cassandra_table``, ``cassandra_read_consistency``,
    ``cassandra_write_consistency``, ``cassandra_entry_ttl``, ``cassandra_auth_provider`` and
    ``cassandra_auth_kwargs``, ``cassandra_options``, ``cassandra_secure_bundle_path``), or
    ``cassandra://[user:password@]host[,host...][:port]/keyspace/table`` (the URL's parts win
    over the settings). ``connection_timeout`` (4 s) is the most a call spends on an
    unreachable cluster before `ConnectionFailed`.
    """

    capabilities = RESULT_STORE_CAPABILITIES

    def __init__(self, url: str, options: Options | None = None) -> None:
        import cassandra

        self._driver = cassandra
        self.url = url
        options = options or {}
        reader = OptionReader(options, "Cassandra result store")
        parts = urlsplit(url)
        if parts.scheme != "cassandra":
            raise ConfigurationError(f"{mask_url(url)!r} is not a Cassandra URL; write "
                                     f"cassandra:// and set cassandra_servers, "
                                     f"cassandra_keyspace and cassandra_table")
        netloc = parts.netloc.rpartition("@")[2]
        hosts, _, port = netloc.rpartition(":") if "]" not in netloc else (netloc, "", "")
        if not hosts:
            hosts, port = port, ""
        path = [unquote(p) for p in parts.path.split("/") if p]
        self.servers = [h for h in hosts.split(",") if h] or (
            reader.strings("cassandra_servers", []) if options.get("cassandra_servers") else [])
        self.bundle_path = options.get("cassandra_secure_bundle_path")
        if bool(self.servers) == bool(self.bundle_path):
            raise ConfigurationError(
                "the Cassandra result store needs exactly one of cassandra_servers (the "
                "contact points) and cassandra_secure_bundle_path (Astra DB); "
                + ("both are set" if self.servers else "neither is set"))
        if port and not port.isdigit():
            raise ConfigurationError(f"the port of {mask_url(url)!r} is not a number")
        self.port = int(port) if port else (
            DEFAULT_PORT if options.get("cassandra_port") is None
            else reader.integer("cassandra_port", DEFAULT_PORT, minimum=1))
        self.keyspace = _name(path[0] if path else str(options.get("cassandra_keyspace") or ""),
                              "keyspace")
        self.table = _name(path[1] if len(path) > 1 else str(options.get("cassandra_table") or ""),
                           "table")
        self.read_consistency = self._consistency(reader, "cassandra_read_consistency")
        self.write_consistency = self._consistency(reader, "cassandra_write_consistency")
        entry_ttl = options.get("cassandra_entry_ttl")
        self.entry_ttl = None if entry_ttl is None else reader.integer("cassandra_entry_ttl", 0,
                                                                       minimum=1)
        self.auth_provider = self._auth(options, parts.username, parts.password)
        extra = options.get("cassandra_options") or {}
        if not isinstance(extra, Mapping):
            raise ConfigurationError("cassandra_options must be a mapping of "
                                     "cassandra.cluster.Cluster's arguments")
        self.cluster_options = dict(extra)
        self.connection_timeout = reader.number("connection_timeout", 4.0, positive=True)
        fields = options.get("record_fields")
        if not isinstance(fields, RecordFields):
            raise ConfigurationError("the Cassandra result store needs options['record_fields'] "
                                     "(the App gives it): create it through App(results=...)")
        self.fields = fields
        self._lock = threading.Lock()
        self._pid = -1
        self._cluster: Any = None
        self._session: Any = None

    def _consistency(self, reader: OptionReader, setting: str) -> Any:
        name = str(reader.get(setting, None) or "LOCAL_QUORUM")
        level = getattr(self._driver.ConsistencyLevel, name.upper(), None)
        if not isinstance(level, int):
            raise ConfigurationError(
                f"{setting} {name!r} is not a Cassandra consistency level; use one of ONE, "
                f"QUORUM, LOCAL_QUORUM, LOCAL_ONE, EACH_QUORUM, ALL")
        return level

    def _auth(self, options: Options, user: str | None, password: str | None) -> Any:
        import cassandra.auth

        if user:
            return cassandra.auth.PlainTextAuthProvider(unquote(user), unquote(password or ""))
        name, kwargs = options.get("cassandra_auth_provider"), options.get("cassandra_auth_kwargs")
        if not name or not kwargs:
            return None
        provider = getattr(cassandra.auth, str(name), None)
        if not (isinstance(provider, type) and issubclass(provider, cassandra.auth.AuthProvider)):
            raise ConfigurationError(
                f"cassandra_auth_provider {name!r} is not an auth provider of cassandra.auth; "
                f"use PlainTextAuthProvider (or another class there)")
        return provider(**kwargs)

    def __repr__(self) -> str:
        return f"<CassandraStore {self}>"

    def __str__(self) -> str:
        where = ",".join(self.servers) if self.servers else "the secure connect bundle"
        return f"the Cassandra table {self.keyspace}.{self.table} at {where}"

    # ------------------------------------------------------------------ the session

    def session(self) -> Any:
        """This process's session (a forked child connects anew); the tables are created on
        first use."""
        with self._lock:
            if self._session is not None and self._pid == os.getpid():
                return self._session
            import cassandra.cluster

            where: dict[str, Any] = (
                {"contact_points": self.servers, "port": self.port} if self.servers else
                {"cloud": {"secure_connect_bundle": self.bundle_path}})

            def connect() -> tuple[Any, Any]:
                # A cluster whose connect failed is shut down: each attempt makes its own.
                cluster = cassandra.cluster.Cluster(
                    **where, auth_provider=self.auth_provider,
                    connect_timeout=self.connection_timeout,
                    control_connection_timeout=self.connection_timeout,
                    **self.cluster_options)
                try:
                    return cluster, cluster.connect(self.keyspace)
                except BaseException:
                    cluster.shutdown()
                    raise

            cluster, session = self._call("connect", connect)
            try:
                for statement in (CREATE_TASKS, CREATE_KEYS):
                    self._call("create the tables",
                               partial(session.execute, statement.format(table=self.table)))
            except BaseException:
                cluster.shutdown()
                raise
            self._cluster, self._session, self._pid = cluster, session, os.getpid()
            return session

    def _call(self, what: str, call: Callable[[], T], *, resend: bool = True) -> T:
        """`call`, tried again while the cluster cannot be reached and `connection_timeout`
        allows; the driver's errors become sentences."""
        from cassandra.cluster import NoHostAvailable

        cassandra = self._driver
        unreached = (NoHostAvailable, cassandra.OperationTimedOut,
                     cassandra.Unavailable, cassandra.ReadTimeout, cassandra.WriteTimeout)

        def attempt() -> T:
            try:
                return call()
            except NoHostAvailable as exc:
                refused = [e for e in exc.errors.values()
                           if isinstance(e, cassandra.AuthenticationFailed)]
                if refused:
                    raise ConfigurationError(
                        f"Cassandra at {','.join(self.servers)} refused the credentials "
                        f"({' '.join(str(refused[0]).split())[:160]}); check "
                        f"cassandra_auth_provider and cassandra_auth_kwargs") from None
                raise

        def failed(exc: BaseException) -> ConnectionFailed:
            return ConnectionFailed(
                f"cannot reach {self} to {what} within {self.connection_timeout:g} s "
                f"({type(exc).__name__}); check the cluster is up and cassandra_servers and "
                f"cassandra_port are right, or allow longer (broker_connection_timeout)")

        try:
            if not resend:
                return attempt()
            return retry_within(self.connection_timeout, attempt, unreached, failed)
        except unreached as exc:
            raise failed(exc) from None
        except cassandra.Unauthorized as exc:
            raise ConfigurationError(
                f"Cassandra refused to let us {what} in {self.keyspace}.{self.table} "
                f"({' '.join(str(exc).split())[:160]}); grant the user SELECT and MODIFY there "
                f"(and CREATE, or create the tables first)") from None
        except cassandra.InvalidRequest as exc:
            said = " ".join(str(exc).split())[:200]
            if re.search(r"keyspace .*(does not exist|not found)", said, re.IGNORECASE):
                raise ConfigurationError(
                    f"the keyspace {self.keyspace!r} does not exist ({said}); create it "
                    f"(CREATE KEYSPACE {self.keyspace} WITH replication = ...) or set "
                    f"cassandra_keyspace: kernel never creates keyspaces") from None
            raise KernelError(f"Cassandra could not {what} in {self}: {said}") from None

    def _execute(self, what: str, query: str, params: Sequence[Any], *, write: bool,
                 resend: bool = True) -> Any:
        from cassandra.query import SimpleStatement

        session = self.session()
        statement = SimpleStatement(query.format(table=self.table), consistency_level=(
            self.write_consistency if write else self.read_consistency))
        return self._call(what, lambda: session.execute(statement, tuple(params)),
                          resend=resend)

    # ------------------------------------------------------------------ tasks

    def _task_row(self, key: str, value: bytes, date_done: datetime) -> tuple[Any, ...]:
        task = self.fields.task(value)
        dumps = self.fields.dumps
        return (task.task_id, task.status, dumps(task.result), _millis(date_done),
                dumps(task.traceback), dumps(task.children))

    def _task_ttl(self, expires: float | None) -> str:
        return _ttl(self.entry_ttl if self.entry_ttl is not None else expires)

    def _read_task(self, task_id: str) -> bytes | None:
        rows = list(self._execute(f"read task {task_id}", SELECT_TASK, [task_id], write=False))
        if not rows:
            return None
        status, result, date_done, traceback, children = max(
            rows, key=lambda r: _aware(r[2]))  # the newest row (Celery: LIMIT 1, DESC)
        loads = self.fields.loads
        done = _aware(date_done)
        return self.fields.task_record(TaskFields(
            task_id, status, result=loads(result, f"the result of task {task_id} in {self}"),
            traceback=loads(traceback, f"the traceback of task {task_id} in {self}"),
            date_done=None if done == BOTTOM else done,
            children=loads(children, f"the children of task {task_id} in {self}")))

    # ------------------------------------------------------------------ the contract

    def set(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        for key, value in items:
            kind = key_kind(key)
            if kind is not None and kind[0] == "task":
                self._execute(f"store {key!r}", INSERT_TASK + self._task_ttl(expires),
                              self._task_row(key, value, datetime.now(timezone.utc)),
                              write=True)
            else:
                self._execute(f"store {key!r}", INSERT_KEY + _ttl(expires), [key, value],
                              write=True)

    def add(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        for key, value in items:
            kind = key_kind(key)
            if kind is not None and kind[0] == "task":
                self._execute(f"add {key!r}",
                              INSERT_TASK + " IF NOT EXISTS" + self._task_ttl(expires),
                              self._task_row(key, value, BOTTOM), write=True)
            else:
                self._execute(f"add {key!r}", INSERT_KEY + " IF NOT EXISTS" + _ttl(expires),
                              [key, value], write=True)

    def get(self, key: str) -> bytes | None:
        kind = key_kind(key)
        if kind is not None and kind[0] == "task":
            return self._read_task(kind[1])
        row = self._execute(f"read {key!r}", SELECT_KEY, [key], write=False).one()
        return None if row is None or row[0] is None else bytes(row[0])

    def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            kind = key_kind(key)
            if kind is not None and kind[0] == "task":
                self._execute(f"forget {key!r}", DELETE_TASK, [kind[1]], write=True)
            else:
                self._execute(f"forget {key!r}", DELETE_KEY, [key], write=True)

    def incr(self, key: str, amount: int = 1, expires: float | None = None) -> int:
        """Read, add and write: not atomic (``capabilities.atomic_counter`` is False)."""
        current = self.get(key)
        value = (int(current) if current else 0) + amount
        self.set([(key, b"%d" % value)], expires)
        return value

    def close(self) -> None:
        with self._lock:
            cluster, self._cluster, self._session = self._cluster, None, None
        if cluster is not None and self._pid == os.getpid():
            cluster.shutdown()


__all__ = ["CassandraStore"]
