"""Shared fixtures: the Django project of tests/django_test_settings.py, its databases
migrated, and stores on them.

The tests use a database of their own, ``kernel_django_tests``, on the running PostgreSQL
(``KERNEL_PG_TEST_URL``, default postgres@127.0.0.1:5432) and on the running MariaDB
(``KERNEL_MYSQL_TEST_URL``, default root@127.0.0.1:3306), created if missing, and a SQLite
file per test process. Keys and task ids are unique per test, so tests share the tables, also
under pytest-xdist. Without a reachable PostgreSQL or MariaDB their tests are skipped, except
under CI (``CI`` set) where that is a failure.
"""

from __future__ import annotations

import fcntl
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
# Celery and kernel workers started by the tests import the same settings.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE),
                                                         os.environ.get("PYTHONPATH")]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_test_settings")
os.environ.setdefault("KERNEL_DJANGO_SQLITE",
                      str(Path(tempfile.mkdtemp(prefix="kernel-django-")) / "results.sqlite3"))
sys.path.insert(0, str(HERE))

import django  # noqa: E402
import psycopg  # noqa: E402
import pymysql  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from kernel import App  # noqa: E402
from kernel.testing.servers import unavailable  # noqa: E402
from kernel.testing.workers import CeleryWorkerProcess, celery_workers  # noqa: E402

django.setup()

#: the broker of the interop tests (Celery needs one it has a transport for).
REDIS_URL = os.environ.get("KERNEL_REDIS_TEST_URL", "redis://127.0.0.1:6379/14")


def _create_pg_database() -> None:
    conf = settings.DATABASES["default"]
    try:
        with psycopg.connect(host=conf["HOST"], port=conf["PORT"], user=conf["USER"],
                             password=conf["PASSWORD"] or None, dbname="postgres",
                             connect_timeout=3, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                (conf["NAME"],)).fetchone():
                try:
                    conn.execute(f'CREATE DATABASE "{conf["NAME"]}"')
                except psycopg.errors.DuplicateDatabase:
                    pass  # another test process created it meanwhile
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL is not reachable at {conf['HOST']}:{conf['PORT']} ({exc}); "
                    f"start it or set KERNEL_PG_TEST_URL")


def _create_mysql_database() -> None:
    conf = settings.DATABASES["mysql"]
    try:
        conn = pymysql.connect(host=conf["HOST"], port=int(conf["PORT"]), user=conf["USER"],
                               password=conf["PASSWORD"] or "", connect_timeout=3)
    except pymysql.err.OperationalError as exc:
        unavailable(f"MariaDB/MySQL is not reachable at {conf['HOST']}:{conf['PORT']} ({exc}); "
                    f"start it or set KERNEL_MYSQL_TEST_URL")
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{conf['NAME']}` "
                           f"CHARACTER SET utf8mb4")
    finally:
        conn.close()


def _migrate(alias: str) -> None:
    # One migration at a time, whatever the number of test processes sharing the database.
    with open(Path(tempfile.gettempdir()) / "kernel-django-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        call_command("migrate", database=alias, verbosity=0, interactive=False)


@pytest.fixture(scope="session")
def pg_alias() -> str:
    _create_pg_database()
    _migrate("default")
    return "default"


@pytest.fixture(scope="session")
def mysql_alias() -> str:
    _create_mysql_database()
    _migrate("mysql")
    return "mysql"


@pytest.fixture(scope="session")
def sqlite_alias() -> str:
    _migrate("sqlite")
    return "sqlite"


@pytest.fixture(params=["postgresql", "mysql", "sqlite"])
def alias(request: pytest.FixtureRequest) -> str:
    """Each database in turn: its alias in DATABASES."""
    fixture = {"postgresql": "pg_alias", "mysql": "mysql_alias", "sqlite": "sqlite_alias"}
    return str(request.getfixturevalue(fixture[request.param]))


@pytest.fixture
def make_app() -> Iterator[Callable[..., App]]:
    """``make_app(url, **config)``: an App keeping results there (closed afterwards)."""
    apps: list[App] = []

    def make(url: str, **config: Any) -> App:
        app = App("django-tests", broker="memory://", results=url, config=config)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


@pytest.fixture
def celery_worker(tmp_path: Path) -> Iterator[Callable[[str, str, str], CeleryWorkerProcess]]:
    """Start a real Celery worker (solo pool) on a queue from module source: call it with
    ``(module name, source, queue)``; its log is ``<module>.log`` in the test's tmp_path."""
    with celery_workers(tmp_path) as start:
        yield start
