"""Celery 5 (its CouchDB backend, on pycouchdb) and kernel on one pouchdb-server (results) and
one Redis (broker): a Celery client calls a kernel worker and a kernel client a real Celery
worker, each reading the result through its own AsyncResult."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Callable

import pytest

from kernel import App
from kernel.testing.servers import unavailable
from kernel.testing.workers import CeleryWorkerProcess, running_worker

try:
    import celery
except ImportError:  # pragma: no cover - celery is a test extra
    unavailable("the interop tests need celery>=5.7 and pycouchdb (the plugin's test extra)")


@pytest.fixture
def queue() -> str:
    return f"couchdb-interop-{uuid.uuid4().hex}"


def test_celery_client_reads_a_kernel_workers_result(redis_url: str, couchdb_url: str,
                                                     queue: str) -> None:
    kapp = App("kernel-side", broker=redis_url, results=couchdb_url,
               config={"task_default_queue": queue})

    @kapp.task(name="interop.add")
    def add(x: int, y: int) -> int:
        return x + y

    capp = celery.Celery("celery-side", broker=redis_url, backend=couchdb_url)
    capp.conf.task_default_queue = queue

    @capp.task(name="interop.add")  # type: ignore[untyped-decorator]
    def celery_add(x: int, y: int) -> int:
        raise AssertionError("runs on the kernel worker, never here")

    try:
        with running_worker(kapp, concurrency=2):
            result = celery_add.delay(2, 3)
            assert result.get(timeout=20) == 5, \
                "a Celery client must read the kernel worker's result"
    finally:
        kapp.close()
        capp.close()


CELERY_TASKS = textwrap.dedent("""
    from celery import Celery
    app = Celery("ctasks", broker={broker!r}, backend={results!r})
    app.conf.task_default_queue = {queue!r}
    app.conf.worker_hijack_root_logger = False

    @app.task(name="interop.mul")
    def mul(x, y):
        return x * y
""")


@pytest.mark.timeout(90)
def test_kernel_client_reads_a_celery_workers_result(
        redis_url: str, couchdb_url: str, queue: str,
        celery_worker: Callable[[str, str, str], CeleryWorkerProcess]) -> None:
    worker = celery_worker("ctasks", CELERY_TASKS.format(
        broker=redis_url, results=couchdb_url, queue=queue), queue)
    kapp = App("kernel-client", broker=redis_url, results=couchdb_url)
    try:
        result = kapp.send_task("interop.mul", (6, 7), queue=queue)
        assert result.get(timeout=40) == 42, \
            f"a kernel client must read the Celery worker's result; see {worker.log}"
    finally:
        kapp.close()


