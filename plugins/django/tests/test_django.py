"""Django integration as Celery users know it: settings from django.conf with a namespace,
autodiscovery of INSTALLED_APPS' tasks modules, delay_on_commit, a worker of a Django project
(prefork children included), and connections after a fork."""

from __future__ import annotations

import os
import textwrap
import uuid
from pathlib import Path

import pytest
from django.db import connections, transaction

from kernel import App
from kernel.testing.workers import WorkerProcess

from conftest import REDIS_URL
from kernel_redis.testing import reachable

pytestmark = pytest.mark.integration


def test_settings_come_from_django_with_the_namespace() -> None:
    app = App("proj")
    app.config_from_object("django.conf:settings", namespace="KERNEL")
    assert app.conf.task_default_queue == os.environ.get("KERNEL_TEST_QUEUE",
                                                          "from-django-settings")
    assert app.conf.result_backend == "django-db" and app.conf.result_extended is True
    assert app.conf.broker_url == "memory://"
    app.close()


def test_autodiscover_imports_the_tasks_of_installed_apps() -> None:
    app = App("proj", broker="memory://", results="memory://")
    app.autodiscover_tasks()
    assert app.import_discovered() == ["shop.tasks"], \
        "every INSTALLED_APPS package with a tasks module, and only those"
    assert "shop.checkout" in app.tasks
    app.close()


@pytest.mark.parametrize("database", ["pg_alias", "sqlite_alias"])
def test_delay_on_commit_sends_only_when_the_transaction_commits(
        database: str, request: pytest.FixtureRequest) -> None:
    alias = request.getfixturevalue(database)
    queue = f"on-commit-{uuid.uuid4().hex}"
    app = App("proj", broker="memory://", results="memory://",
              config={"task_default_queue": queue})
    app.autodiscover_tasks(force=True)
    checkout = app.tasks["shop.checkout"]
    with transaction.atomic(using=alias):
        checkout.delay_on_commit(1)
        assert app.transport.size(queue) == 0, "nothing is sent inside the transaction"
    assert app.transport.size(queue) == 1, "sent once it committed"
    with pytest.raises(RuntimeError), transaction.atomic(using=alias):
        checkout.apply_async_on_commit((2,))
        raise RuntimeError("roll back")
    assert app.transport.size(queue) == 1, "a rolled-back transaction sends nothing"
    checkout.delay_on_commit(3)
    assert app.transport.size(queue) == 2, "outside a transaction it is sent at once"
    app.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project's proj/kernel.py, as Celery's proj/celery.py is written."""
    (tmp_path / "kproj.py").write_text(textwrap.dedent("""
        import os

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_test_settings")

        from kernel import App

        app = App("kproj")
        app.config_from_object("django.conf:settings", namespace="KERNEL")
        app.autodiscover_tasks()
    """))
    return tmp_path


@pytest.mark.timeout(120)
@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_a_worker_of_a_django_project(pool: str, project: Path, pg_alias: str) -> None:
    broker = reachable(REDIS_URL, "Redis, the worker's broker,")
    queue = f"django-worker-{uuid.uuid4().hex}"
    env = {"KERNEL_TEST_BROKER": broker, "KERNEL_TEST_QUEUE": queue}
    worker = WorkerProcess("kproj:app", broker=broker, results="django-db", path=project,
                           pool=pool, concurrency=2, queues=[queue],
                           log=project / "worker.log", env=env, loglevel="info")
    client = App("client", broker=broker, results="django-db",
                 config={"task_default_queue": queue})
    try:
        worker.start()
        worker.wait_ready(60)
        assert client.send_task("shop.checkout", (7,)).get(timeout=30) == "order 7 paid", \
            f"the worker found shop's tasks through autodiscovery; see {project / 'worker.log'}"
        counts = [client.send_task("shop.results_with_status", ("SUCCESS",)) for _ in range(6)]
        assert all(r.get(timeout=30) >= 1 for r in counts), \
            "tasks query the database through Django's ORM in every pool process"
    finally:
        worker.stop()
        client.close()


def _backend_pid(alias: str) -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def test_a_forked_child_does_not_use_the_parents_connection(pg_alias: str) -> None:
    # A process that forks has loaded kernel's plugins (an App), and so the fork handler.
    App("forking", broker="memory://", results="memory://").close()
    parent = _backend_pid(pg_alias)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a connection of its own, then its own connections closed
        try:
            mine = _backend_pid(pg_alias)
            connections.close_all()
            os.write(write, str(mine).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = int(os.read(read, 64) or b"0")
    os.close(read)
    assert child and child != parent, "the child opened its own connection"
    assert _backend_pid(pg_alias) == parent, \
        "the parent's connection still works after the child closed its own"
