"""Real Celery 5.7 and kernel workers on one fake Cassandra table (mockylla, in the test's own
process: no CQL server runs here) and one Redis (broker): a Celery worker (Celery's embedded
test worker, in a thread, since the fake lives in this process) writes results and failures
that a kernel client reads, a kernel worker writes what a Celery client reads, and a Celery
client's chord (on ``celery.chord_unlock``) completes on kernel workers (its body's result read
by kernel).

Not here: a kernel client's chord on the Celery worker, and a Celery client reading a task a
kernel client sent. Both read Celery's ``LIMIT 1`` row, which on a real node is the newest (the
table's clustering order is ``date_done DESC``) and on mockylla the first written (it keeps
insertion order): the kernel client's PENDING row, written before the worker's result, would
hide the result there, as it never does on Cassandra (``tests/test_layout.py`` checks the
statements instead)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from kernel import App
from kernel.testing.interop import celery_client, kernel_tasks
from kernel.testing.workers import running_worker
from kernel_cassandra.testing import FakeCluster
from kernel_redis.testing import reachable

if not os.environ.get("CI"):  # under CI a missing Celery is a failure, not a skip
    pytest.importorskip("celery", reason="the interop tests need celery[cassandra]")

pytestmark = pytest.mark.timeout(120)

REDIS_URL = os.environ.get("KERNEL_REDIS_TEST_URL", "redis://127.0.0.1:6379/13")


@pytest.fixture
def redis_url() -> str:
    return reachable(REDIS_URL, "Redis, the interop tests' broker,")


@pytest.fixture
def queue() -> str:
    return f"cassandra-interop-{uuid.uuid4().hex}"


@pytest.fixture
def conf() -> Iterator[dict[str, Any]]:
    """Both sides' settings for one table of the test's own on a fake cluster."""
    with FakeCluster() as fake:
        fake.create_keyspace("results")
        yield {"cassandra_servers": ["127.0.0.1"], "cassandra_keyspace": "results",
               "cassandra_table": f"results_{uuid.uuid4().hex[:12]}",
               "result_chord_retry_interval": 0.2}


@pytest.fixture
def celery_worker(redis_url: str, queue: str, conf: dict[str, Any]) -> Iterator[Any]:
    from celery.contrib.testing.worker import start_worker

    capp = celery_client(redis_url, "cassandra://", queue, **conf)

    @capp.task(name="interop.add")  # type: ignore[untyped-decorator]
    def add(x: int, y: int) -> int:
        return x + y

    @capp.task(name="interop.boom")  # type: ignore[untyped-decorator]
    def boom(text: str) -> None:
        raise KeyError(text)

    capp.conf.task_default_queue = queue
    with start_worker(capp, pool="solo", perform_ping_check=False, loglevel="WARNING"):
        yield capp
    capp.close()


def test_a_celery_workers_results_read_through_kernel(
        redis_url: str, queue: str, conf: dict[str, Any], celery_worker: Any) -> None:
    kapp = App("kernel-client", broker=redis_url, results="cassandra://",
               config={"task_default_queue": queue, **conf})
    try:
        assert kapp.send_task("interop.add", (2, 3)).get(timeout=30) == 5
        failed = kapp.send_task("interop.boom", ("gone",))
        with pytest.raises(KeyError, match="gone"):
            failed.get(timeout=30)
        assert "KeyError" in (failed.traceback or ""), "Celery's traceback column is read"
    finally:
        kapp.close()


@pytest.fixture
def kernel_worker(redis_url: str, queue: str, conf: dict[str, Any]) -> Iterator[App]:
    kapp = kernel_tasks(redis_url, "cassandra://", queue, **conf)
    with running_worker(kapp, concurrency=4):
        yield kapp
    kapp.close()


def test_a_kernel_workers_results_read_through_celery(
        redis_url: str, queue: str, conf: dict[str, Any], kernel_worker: App) -> None:
    capp = celery_client(redis_url, "cassandra://", queue, **conf)
    try:
        assert capp.send_task("interop.add", (4, 5)).get(timeout=30) == 9
        failed = capp.send_task("interop.boom", ("lost",))
        with pytest.raises(KeyError):
            failed.get(timeout=30)
        assert failed.state == "FAILURE" and "KeyError" in failed.traceback
    finally:
        capp.close()


def test_a_celery_chord_runs_on_kernel_workers(
        redis_url: str, queue: str, conf: dict[str, Any], kernel_worker: App) -> None:
    import celery

    capp = celery_client(redis_url, "cassandra://", queue, **conf)
    try:
        add, tsum = capp.signature("interop.add"), capp.signature("interop.tsum")
        result = celery.chord([add.clone((i, i)) for i in range(6)], tsum).apply_async()
        # Read by kernel: the body's rows begin with the PENDING the kernel worker wrote when
        # it sent it, which Celery's LIMIT 1 returns on the fake (see the module's docstring).
        assert kernel_worker.AsyncResult(result.id).get(timeout=60) == 30, \
            "kernel's workers finished Celery's chord (celery.chord_unlock)"
    finally:
        capp.close()
