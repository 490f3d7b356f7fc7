"""Celery 5 and kernel on one memcached (results) and one Redis (broker): a Celery client calls
a kernel worker and a kernel client calls a real Celery worker, each reading the result
through its own AsyncResult; chords sent by either complete on the other's workers, and on both
at once (both count on Celery's chord-unlock-<gid> against the group record)."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kernel import App, Signature, chord
from kernel.testing.interop import celery_tasks_source
from kernel.testing.servers import unavailable
from kernel.testing.workers import CeleryWorkerProcess, running_worker

try:
    import celery
except ImportError:  # pragma: no cover - celery is a test extra
    unavailable("the interop tests need celery>=5.7 (the plugin's test extra)")


@pytest.fixture
def queue() -> str:
    return f"memcached-interop-{uuid.uuid4().hex}"


@pytest.fixture
def kernel_worker(redis_url: str, memcached_url: str, queue: str) -> Iterator[App]:
    kapp = App("kernel-side", broker=redis_url, results=memcached_url,
               config={"task_default_queue": queue})

    @kapp.task(name="interop.add")
    def add(x: int, y: int) -> int:
        return x + y

    @kapp.task(name="interop.tsum")
    def tsum(values: list[int]) -> int:
        return sum(values)

    with running_worker(kapp, concurrency=4):
        yield kapp
    kapp.close()


@pytest.fixture
def celery_client(redis_url: str, memcached_url: str, queue: str) -> Iterator[Any]:
    capp = celery.Celery("celery-side", broker=redis_url, backend=memcached_url)
    capp.conf.task_default_queue = queue

    @capp.task(name="interop.add")  # type: ignore[untyped-decorator]
    def add(x: int, y: int) -> int:
        raise AssertionError("runs on the kernel worker, never here")

    @capp.task(name="interop.tsum")  # type: ignore[untyped-decorator]
    def tsum(values: list[int]) -> int:
        raise AssertionError("runs on the kernel worker, never here")

    yield capp
    capp.close()


def test_celery_client_reads_a_kernel_workers_result(kernel_worker: App,
                                                     celery_client: Any) -> None:
    result = celery_client.tasks["interop.add"].delay(2, 3)
    assert result.get(timeout=15) == 5, "a Celery client must read the kernel worker's result"
    assert result.status == "SUCCESS"


def test_celery_clients_chord_runs_on_kernel_workers(kernel_worker: App,
                                                     celery_client: Any) -> None:
    add, tsum = celery_client.tasks["interop.add"], celery_client.tasks["interop.tsum"]
    result = celery.chord(add.s(i, i) for i in range(5))(tsum.s())
    assert result.get(timeout=10) == 20, \
        "a Celery client's chord must complete on kernel workers"


CELERY_TASKS = textwrap.dedent("""
    from celery import Celery
    app = Celery("ctasks", broker={broker!r}, backend={results!r})
    app.conf.task_default_queue = {queue!r}
    app.conf.worker_hijack_root_logger = False

    @app.task(name="interop.mul")
    def mul(x, y):
        return x * y

    @app.task(name="interop.tsum")
    def tsum(values):
        return sum(values)
""")


@pytest.fixture
def celery_worker_app(redis_url: str, memcached_url: str, queue: str,
                      celery_worker: Callable[[str, str, str], CeleryWorkerProcess]
                      ) -> Iterator[tuple[App, CeleryWorkerProcess]]:
    worker = celery_worker("ctasks", CELERY_TASKS.format(
        broker=redis_url, results=memcached_url, queue=queue), queue)
    kapp = App("kernel-client", broker=redis_url, results=memcached_url,
               config={"task_default_queue": queue})
    yield kapp, worker
    kapp.close()


@pytest.mark.timeout(90)
def test_kernel_client_reads_a_celery_workers_result(
        celery_worker_app: tuple[App, CeleryWorkerProcess]) -> None:
    kapp, worker = celery_worker_app
    result = kapp.send_task("interop.mul", (6, 7))
    assert result.get(timeout=40) == 42, \
        f"a kernel client must read the Celery worker's result; see {worker.log}"


@pytest.mark.timeout(90)
def test_kernel_clients_chord_runs_on_a_celery_worker(
        celery_worker_app: tuple[App, CeleryWorkerProcess]) -> None:
    kapp, worker = celery_worker_app
    result = chord([Signature("interop.mul", (i, 2), app=kapp) for i in range(4)])(
        Signature("interop.tsum", app=kapp))
    assert result.get(timeout=10) == 12, \
        f"a kernel client's chord must complete on a Celery worker; see {worker.log}"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("client", ["kernel", "celery"])
def test_a_chord_whose_members_run_on_celery_and_kernel_workers_completes(
        client: str, kernel_worker: App, celery_client: Any, redis_url: str,
        memcached_url: str, queue: str,
        celery_worker: Callable[[str, str, str], CeleryWorkerProcess]) -> None:
    """One chord, its even members on a Celery worker and its odd ones on a kernel worker:
    both count on chord-unlock-<gid>, and whichever counts last sends the body with every
    value in the header's order (the kernel worker reads the Celery-run members' results)."""
    other = f"{queue}-celery"
    worker = celery_worker("ctasks_mixed", celery_tasks_source(redis_url, memcached_url, other),
                           other)
    if client == "kernel":
        header = [Signature("interop.add", (i, i), app=kernel_worker,
                            options={"queue": other if i % 2 == 0 else queue})
                  for i in range(8)]
        result = chord(header)(Signature("interop.tsum", app=kernel_worker))
    else:
        add, tsum = celery_client.tasks["interop.add"], celery_client.tasks["interop.tsum"]
        result = celery.chord(add.s(i, i).set(queue=other if i % 2 == 0 else queue)
                              for i in range(8))(tsum.s())
    assert result.get(timeout=60) == sum(2 * i for i in range(8)), \
        f"the mixed chord must complete; see {worker.log}"
    members = [m.id for m in result.parent.results]
    ran = [(kernel_worker.backend.get_meta(m) or {}).get("worker") for m in members]
    assert ran[0::2] == [worker.nodename] * 4, f"the Celery worker ran the even members: {ran}"
