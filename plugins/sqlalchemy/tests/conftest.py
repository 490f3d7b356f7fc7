"""Shared fixtures: the databases the tests run against, and Apps on them.

The tests use a database of their own, ``kernel_sqlalchemy_tests``, on the running PostgreSQL
(``KERNEL_PG_TEST_URL``, default postgres@127.0.0.1:5432) and MariaDB (``KERNEL_MYSQL_TEST_URL``,
root@127.0.0.1:3306), created if missing, and a SQLite file per test session. Keys and task ids
are unique per test, so tests share the tables, also under pytest-xdist. Without a reachable
server the tests are skipped, except under CI (``CI`` set) where that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from kernel.testing.results import app_stores
from kernel.testing.servers import unavailable
from kernel.testing.workers import CeleryWorkerProcess, celery_workers
from kernel_sqlalchemy.results import SqlResultStore

DATABASE = "kernel_sqlalchemy_tests"
SERVERS = {
    "postgresql": os.environ.get("KERNEL_PG_TEST_URL",
                                 "postgresql+psycopg://postgres@127.0.0.1:5432"),
    "mysql": os.environ.get("KERNEL_MYSQL_TEST_URL", "mysql+pymysql://root@127.0.0.1:3306"),
}
#: the broker of the interop tests (Celery needs one it has a transport for).
REDIS_URL = os.environ.get("KERNEL_REDIS_TEST_URL", "redis://127.0.0.1:6379/12")


def _database(server: str) -> str:
    """The URL (without db+) of the tests' database on `server`, created if missing."""
    base = SERVERS[server]
    admin = sa.create_engine(f"{base}/{'postgres' if server == 'postgresql' else ''}",
                             isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            if server == "postgresql":
                found = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :d"),
                                     {"d": DATABASE}).scalar()
                if not found:
                    conn.execute(sa.text(f"CREATE DATABASE {DATABASE}"))
            else:
                conn.execute(sa.text(f"CREATE DATABASE IF NOT EXISTS {DATABASE}"))
    except sa.exc.DBAPIError as exc:
        unavailable(f"{server} is not reachable at {base} ({exc.orig}); start it or set "
                    f"KERNEL_{'PG' if server == 'postgresql' else 'MYSQL'}_TEST_URL")
    finally:
        admin.dispose()
    return f"{base}/{DATABASE}"


@pytest.fixture(scope="session")
def pg_url() -> str:
    return "db+" + _database("postgresql")


@pytest.fixture(scope="session")
def mysql_url() -> str:
    return "db+" + _database("mysql")


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"db+sqlite:///{tmp_path_factory.mktemp('sqlite') / 'results.db'}"


@pytest.fixture(params=["postgresql", "mysql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each database in turn."""
    fixture = {"postgresql": "pg_url", "mysql": "mysql_url", "sqlite": "sqlite_url"}
    return str(request.getfixturevalue(fixture[request.param]))


@pytest.fixture
def make_store() -> Iterator[Callable[..., SqlResultStore]]:
    """``make_store(url, **config)``: the store an App with that config would use."""
    with app_stores(SqlResultStore, "sqlalchemy-tests") as make:
        yield make


@pytest.fixture
def celery_worker(tmp_path: Path) -> Iterator[Callable[[str, str, str], CeleryWorkerProcess]]:
    """Start a real Celery worker (solo pool) on a queue from module source: call it with
    ``(module name, source, queue)``; its log is ``<module>.log`` in the test's tmp_path."""
    with celery_workers(tmp_path) as start:
        yield start
