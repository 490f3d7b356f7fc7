"""URLs, engines and errors: a Celery ``db+`` URL to a SQLAlchemy engine of this process, work
in one transaction tried again on a fresh connection when the server broke one (`Database`),
and a database's failure to one sentence; the result and schedule stores share them."""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url

from kernel.plugin import ConfigurationError, ConnectionFailed, KernelError, mask_url

log = logging.getLogger("kernel.sqlalchemy")
T = TypeVar("T")

#: how many times a statement is tried when the server broke its connection.
ATTEMPTS = 3

#: the driver SQLAlchemy picks for a URL without one, and the one this distribution's extras
#: install instead (``postgres``: psycopg 3, ``mysql``: PyMySQL).
_DEFAULT_DRIVERS = {"postgresql": ("psycopg2", "psycopg", "postgres"),
                    "mysql": ("MySQLdb", "pymysql", "mysql"),
                    "mariadb": ("MySQLdb", "pymysql", "mysql")}
#: the module each driver name imports, to say which extra installs a missing one.
_DRIVER_MODULES = {"psycopg2": ("psycopg2", "postgres"), "psycopg": ("psycopg", "postgres"),
                   "pymysql": ("pymysql", "mysql"), "mysqldb": ("MySQLdb", "mysql")}


def sqlalchemy_url(url: str) -> URL:
    """The SQLAlchemy URL of a ``db+`` URL. Without a driver, ``postgresql`` and ``mysql``
    use SQLAlchemy's default (psycopg2, mysqlclient) when installed, else the one the extras
    install (psycopg, PyMySQL)."""
    if not url.startswith("db+"):
        raise ConfigurationError(f"{mask_url(url)} is not a database URL; write Celery's form, "
                                 f"db+postgresql://user:password@host/dbname")
    try:
        parsed = make_url(url[len("db+"):])
    except sa_exc.ArgumentError:
        raise ConfigurationError(
            f"{mask_url(url)} is not a valid SQLAlchemy URL; write "
            f"db+dialect[+driver]://user:password@host[:port]/dbname") from None
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ConfigurationError(f"{mask_url(url)} is an in-memory SQLite database, which each "
                                 f"connection sees alone; name a file: db+sqlite:///results.db")
    defaults = _DEFAULT_DRIVERS.get(backend)
    if defaults and "+" not in parsed.drivername:
        usual, ours, _ = defaults
        if importlib.util.find_spec(usual) is None:
            parsed = parsed.set(drivername=f"{backend}+{ours}")
            driver = ours
    module, extra = _DRIVER_MODULES.get(driver, (None, None))
    if module is not None and importlib.util.find_spec(module) is None:
        raise ConfigurationError(f"{mask_url(url)} needs the {driver} driver: install "
                                 f"kernel-sqlalchemy[{extra}]")
    return parsed


def create_engine(url: URL, options: Mapping[str, Any], connection_timeout: float,
                  pool_size: int) -> Engine:
    """An engine with `pool_size` connections kept where the dialect pools, `connection_timeout`
    to give up connecting and connections recycled after an hour (Celery's); `options`
    (``database_engine_options``) override each. Unlike Celery, no ``pool_pre_ping``: it costs
    a round trip per use, and `Database.run` already replaces a connection a restart broke
    and does the work again where that is safe."""
    settings: dict[str, Any] = {"pool_recycle": 3600}
    backend = url.get_backend_name()
    if backend == "sqlite":
        # Writers wait for each other instead of failing at once ("database is locked").
        settings["connect_args"] = {"timeout": 30.0}
    else:
        settings["pool_size"] = pool_size
        settings["connect_args"] = {"connect_timeout": max(2, round(connection_timeout))}
    # connect_args given are added to the defaults' (connect_timeout stays unless named).
    extra = options.get("connect_args", {})
    if not isinstance(extra, Mapping):
        raise ConfigurationError(f"database_engine_options['connect_args'] must be a dict, "
                                 f"not {type(extra).__name__}")
    settings.update({**options, "connect_args": {**settings["connect_args"], **extra}})
    try:
        engine = sa.create_engine(url, **settings)
    except (TypeError, sa_exc.ArgumentError) as exc:
        raise ConfigurationError(f"database_engine_options do not suit {backend}: {exc}; "
                                 f"check them against sqlalchemy.create_engine") from None
    if backend == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_wal)
    return engine


def _sqlite_wal(dbapi_connection: Any, _record: Any) -> None:
    # Readers never wait for a writer (the worker writes while clients poll).
    dbapi_connection.execute("PRAGMA journal_mode=WAL")


_UNREACHABLE = re.compile(r"refused|could not connect|can't connect|timeout|timed out|"
                          r"no route|name or service not known|could not translate host|"
                          r"lost connection|server closed|terminat|gone away|broken pipe",
                          re.IGNORECASE)
_CREDENTIALS = re.compile(r"password authentication|access denied|authentication failed|"
                          r"no password supplied|role .* does not exist", re.IGNORECASE)
_NO_DATABASE = re.compile(r"database .* does not exist|unknown database", re.IGNORECASE)


def failure(exc: sa_exc.SQLAlchemyError, url: str, doing: str,
            what: str = "result database") -> KernelError:
    """One sentence for a database error: what is wrong and what to do; `what` names the
    database by its role (``result database``, ``schedule database``)."""
    where = mask_url(url)
    orig = getattr(exc, "orig", None)
    reason = " ".join(str(orig if orig is not None else exc).split()) or type(exc).__name__
    reason = mask_url(reason)
    if _CREDENTIALS.search(reason):
        return ConfigurationError(f"the {what} {where} refused the credentials "
                                  f"({reason}); check the user and password in its URL")
    if _NO_DATABASE.search(reason):
        return ConfigurationError(f"the {what} of {where} does not exist ({reason}); "
                                  f"create it (CREATE DATABASE) or fix the name in the URL")
    if "unable to open database" in reason:
        return ConfigurationError(f"cannot open the SQLite file of {where} ({reason}); check "
                                  f"its directory exists and is writable")
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)) or \
            _UNREACHABLE.search(reason):
        return ConnectionFailed(f"cannot reach the {what} {where} to {doing} "
                                f"({reason}); check the server runs and the URL's host and "
                                f"port")
    return ConfigurationError(f"the {what} {where} refused to {doing} ({reason}); "
                              f"check its tables match kernel's (and Celery's) and the user "
                              f"may write them")


class Database:
    """One database as a store of this process uses it: the engine (a prefork child makes its
    own and never touches its parent's connections) and `run`, which does work in one
    transaction. `what` names the database in errors (``result database``)."""

    def __init__(self, url: str, engine_options: Mapping[str, Any], connection_timeout: float,
                 pool_size: int, what: str) -> None:
        self.url = url
        self.what = what
        self.sa_url = sqlalchemy_url(url)
        self._options = dict(engine_options)
        self._timeout = connection_timeout
        self._pool_size = pool_size
        self._engine: Engine | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def engine(self) -> Engine:
        """This process's engine."""
        pid = os.getpid()
        if self._engine is not None and self._pid == pid:
            return self._engine
        if self._pid != pid:
            self._lock = threading.Lock()  # one held by a thread of the parent stays held
        with self._lock:
            if self._engine is not None and self._pid != pid:
                # The parent's sockets are the parent's: forget them without closing them.
                self._engine.dispose(close=False)
                self._engine = None
            if self._engine is None:
                self._engine = create_engine(self.sa_url, self._options, self._timeout,
                                             self._pool_size)
                self._pid = pid
            return self._engine

    def run(self, doing: str, work: Callable[[Connection], T], retry: bool = True,
            single: bool = False) -> T:
        """`work` in one transaction. A connection the server broke (a restart drops them all,
        and one caught mid-query can fail in ways the driver does not call a disconnect) is
        thrown away and `work` tried again on a fresh one, up to `ATTEMPTS` times (Celery's
        database backend tries 3): always when it broke before the commit was sent (nothing
        was committed), and when the commit itself failed only where doing `work` twice is
        harmless (`retry`). `single`: `work` is one statement, safe to run twice; it runs
        without BEGIN and COMMIT, the statement its own transaction (two round trips fewer).
        Failures raise `failure`'s sentence."""
        for attempt in range(1, ATTEMPTS + 1):
            last = attempt == ATTEMPTS
            engine = self.engine()
            try:
                conn = engine.connect()
                if single:
                    conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            except sa_exc.DBAPIError as exc:
                if last:
                    raise failure(exc, self.url, doing, self.what) from None
                self._broken(exc, attempt)
                engine.dispose()  # the pooled connections are likely as dead as this one
                continue
            except sa_exc.SQLAlchemyError as exc:
                raise failure(exc, self.url, doing, self.what) from None
            committing = False
            try:
                if single:
                    return work(conn)
                with conn.begin() as transaction:
                    result = work(conn)
                    committing = True
                    transaction.commit()
                return result
            except sa_exc.DBAPIError as exc:
                conn.invalidate()
                if last or (committing and not retry):
                    raise failure(exc, self.url, doing, self.what) from None
                self._broken(exc, attempt)
            except sa_exc.SQLAlchemyError as exc:
                raise failure(exc, self.url, doing, self.what) from None
            finally:
                conn.close()
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _broken(self, exc: sa_exc.DBAPIError, attempt: int) -> None:
        log.warning("%s %s failed a statement (%s); trying again on a fresh connection",
                    self.what, mask_url(self.url), type(exc.orig).__name__)
        time.sleep(0.05 * attempt)  # a restarting server takes a moment to accept again

    def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose(close=self._pid == os.getpid())
