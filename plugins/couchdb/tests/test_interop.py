"""Celery 5 (its CouchDB backend, on pycouchdb) and kernel on one pouchdb-server (results) and
one Redis (broker): a Celery client calls a kernel worker and a kernel client a real Celery
worker, each reading the result through its own AsyncResult; chords both ways (on
``celery.chord_unlock``, as Celery's CouchDB backend runs them), also split over both."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kernel import App, Signature, chord
from kernel.testing.interop import celery_client, celery_tasks_source, kernel_tasks
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




@pytest.fixture
def kernel_worker(redis_url: str, couchdb_url: str, queue: str) -> Iterator[App]:
    kapp = kernel_tasks(redis_url, couchdb_url, queue)
    with running_worker(kapp, concurrency=4):
        yield kapp
    kapp.close()


@pytest.mark.timeout(90)
def test_a_celery_chord_runs_on_kernel_workers(redis_url: str, couchdb_url: str, queue: str,
                                               kernel_worker: App) -> None:
    """Celery's CouchDB backend has no counter: its client sends celery.chord_unlock, which a
    kernel worker runs, reading the header's results from Celery's documents."""
    capp = celery_client(redis_url, couchdb_url, queue)
    try:
        add, tsum = capp.signature("interop.add"), capp.signature("interop.tsum")
        result = celery.chord([add.clone((i, i)) for i in range(6)], tsum).apply_async()
        assert result.get(timeout=60) == 30, \
            "kernel's celery.chord_unlock must run a Celery client's chord"
    finally:
        capp.close()


@pytest.mark.timeout(90)
def test_a_kernel_chord_runs_on_a_celery_worker(
        redis_url: str, couchdb_url: str, queue: str,
        celery_worker: Callable[[str, str, str], CeleryWorkerProcess]) -> None:
    """A kernel client sends celery.chord_unlock for its chords on CouchDB, as Celery's client
    does, so a Celery worker (which counts nothing on this backend) runs the body."""
    worker = celery_worker("ctasks_chord", celery_tasks_source(redis_url, couchdb_url, queue),
                           queue)
    kapp = App("kernel-client", broker=redis_url, results=couchdb_url,
               config={"task_default_queue": queue, "result_chord_retry_interval": 0.2})

    def sig(name: str, *args: Any) -> Signature:
        return Signature(f"interop.{name}", args, app=kapp)

    try:
        body = chord([sig("add", i, i) for i in range(6)], sig("tsum")).apply_async()
        assert body.get(timeout=60) == 30, \
            f"Celery's chord_unlock must run a kernel client's chord; see {worker.log}"
        failing = chord([sig("add", 1, 1), sig("boom", "lost")], sig("tsum")).apply_async()
        with pytest.raises(Exception, match="lost"):
            failing.get(timeout=60)
    finally:
        kapp.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("client", ["kernel", "celery"])
def test_a_chord_whose_members_run_on_celery_and_kernel_workers_completes(
        client: str, redis_url: str, couchdb_url: str, queue: str, kernel_worker: App,
        celery_worker: Callable[[str, str, str], CeleryWorkerProcess]) -> None:
    """One chord, its even members on a Celery worker and its odd ones on a kernel worker:
    celery.chord_unlock (run by whichever worker takes it) reads every member's result, and
    the body gets them in the header's order."""
    other = f"{queue}-celery"
    worker = celery_worker("ctasks_mixed", celery_tasks_source(redis_url, couchdb_url, other),
                           other)
    capp = celery_client(redis_url, couchdb_url, queue)
    try:
        if client == "kernel":
            header = [Signature("interop.add", (i, i), app=kernel_worker,
                                options={"queue": other if i % 2 == 0 else queue})
                      for i in range(6)]
            result = chord(header)(Signature("interop.tsum", app=kernel_worker))
        else:
            add, tsum = capp.signature("interop.add"), capp.signature("interop.tsum")
            result = celery.chord([add.clone((i, i), queue=other if i % 2 == 0 else queue)
                                   for i in range(6)], tsum).apply_async()
        assert result.get(timeout=60) == 30, f"the mixed chord must complete; see {worker.log}"
        members = [m.id for m in result.parent.results]
        ran = [(kernel_worker.backend.get_meta(m) or {}).get("worker") for m in members]
        assert ran[0::2] == [worker.nodename] * 3, \
            f"the Celery worker ran the even members: {ran}"
    finally:
        capp.close()
