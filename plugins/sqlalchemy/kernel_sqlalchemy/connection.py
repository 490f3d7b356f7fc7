"""URLs, engines and errors: a Celery ``db+`` URL to a SQLAlchemy engine of this process, and
a database's failure to one sentence."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Engine, make_url

from kernel.plugin import ConfigurationError, ConnectionFailed, KernelError, mask_url

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
    """An engine with Celery's defaults (pool_pre_ping: a connection a server restart closed
    is replaced before use; pool_recycle an hour), `pool_size` connections kept where the
    dialect pools, `connection_timeout` to give up connecting; `options`
    (``database_engine_options``) override each."""
    settings: dict[str, Any] = {"pool_pre_ping": True, "pool_recycle": 3600}
    backend = url.get_backend_name()
    if backend == "sqlite":
        # Writers wait for each other instead of failing at once ("database is locked").
        settings["connect_args"] = {"timeout": 30.0}
    else:
        settings["pool_size"] = pool_size
        settings["connect_args"] = {"connect_timeout": max(2, round(connection_timeout))}
    settings.update(options)
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


def failure(exc: sa_exc.SQLAlchemyError, url: str, doing: str) -> KernelError:
    """One sentence for a database error: what is wrong and what to do."""
    where = mask_url(url)
    orig = getattr(exc, "orig", None)
    reason = " ".join(str(orig if orig is not None else exc).split()) or type(exc).__name__
    reason = mask_url(reason)
    if _CREDENTIALS.search(reason):
        return ConfigurationError(f"the result database {where} refused the credentials "
                                  f"({reason}); check the user and password in result_backend")
    if _NO_DATABASE.search(reason):
        return ConfigurationError(f"the result database of {where} does not exist ({reason}); "
                                  f"create it (CREATE DATABASE) or fix the name in the URL")
    if "unable to open database" in reason:
        return ConfigurationError(f"cannot open the SQLite file of {where} ({reason}); check "
                                  f"its directory exists and is writable")
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)) or \
            _UNREACHABLE.search(reason):
        return ConnectionFailed(f"cannot reach the result database {where} to {doing} "
                                f"({reason}); check the server runs and the URL's host and "
                                f"port")
    return ConfigurationError(f"the result database {where} refused to {doing} ({reason}); "
                              f"check its tables match Celery's and the user may write them")
