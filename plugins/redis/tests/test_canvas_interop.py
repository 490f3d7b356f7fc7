"""Canvases across Celery 5 and kernel on one Redis: a Celery client's chain and chord run on
kernel workers and come back through Celery's AsyncResult, and a kernel client's chain and
chord run on a real Celery worker and come back through kernel's."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kernel import App, Signature, chain, chord
from kernel.testing.workers import CeleryWorkerProcess
from kernel.testing.workers import running_worker

from celery_or_skip import celery



@pytest.fixture
def queue() -> str:
    return f"canvas-interop-{uuid.uuid4().hex}"


@pytest.fixture
def celery_client(redis_url: str, queue: str) -> Iterator[Any]:
    capp = celery.Celery("celery-side", broker=redis_url, backend=redis_url)
    capp.conf.task_default_queue = queue
    yield capp
    capp.close()


@pytest.fixture
def kernel_worker(redis_url: str, queue: str) -> Iterator[list[str]]:
    """A kernel worker with interop.add and interop.tsum; yields the ids of the tasks run."""
    kapp = App("kernel-side", broker=redis_url, results=redis_url,
               config={"task_default_queue": queue})
    ran: list[str] = []

    @kapp.task(name="interop.add", bind=True)
    def add(self: Any, x: int, y: int) -> int:
        ran.append(self.request.id)
        return x + y

    @kapp.task(name="interop.tsum", bind=True)
    def tsum(self: Any, values: list[int]) -> int:
        ran.append(self.request.id)
        return sum(values)

    with running_worker(kapp, concurrency=4):
        yield ran
    kapp.close()


def celery_stubs(capp: Any) -> tuple[Any, Any]:
    @capp.task(name="interop.add")  # type: ignore[untyped-decorator]
    def add(x: int, y: int) -> int:
        raise AssertionError("runs on the kernel worker, never here")

    @capp.task(name="interop.tsum")  # type: ignore[untyped-decorator]
    def tsum(values: list[int]) -> int:
        raise AssertionError("runs on the kernel worker, never here")

    return add, tsum


def test_celery_chain_runs_on_kernel_workers(celery_client: Any,
                                             kernel_worker: list[str]) -> None:
    add, _ = celery_stubs(celery_client)
    result = celery.chain(add.s(1, 2), add.s(3)).apply_async()
    assert result.get(timeout=20) == 6
    assert result.parent.get(timeout=5) == 3
    assert len(kernel_worker) == 2


def test_celery_chord_runs_on_kernel_workers(celery_client: Any,
                                             kernel_worker: list[str]) -> None:
    add, tsum = celery_stubs(celery_client)
    result = celery.chord([add.s(i, i) for i in range(10)], tsum.s()).apply_async()
    assert result.get(timeout=20) == 90, "the body got the header's results through Redis"
    assert len(kernel_worker) == 11 and len(set(kernel_worker)) == 11, "each task ran once"


CELERY_TASKS = textwrap.dedent("""
    from celery import Celery
    app = Celery("ctasks", broker={url!r}, backend={url!r})
    app.conf.task_default_queue = {queue!r}
    app.conf.worker_hijack_root_logger = False

    @app.task(name="interop.add")
    def add(x, y):
        return x + y

    @app.task(name="interop.tsum")
    def tsum(values):
        return sum(values)
""")


@pytest.fixture
def celery_on_queue(redis_url: str, queue: str,
                    celery_worker: Callable[[str, str, str], CeleryWorkerProcess]) -> None:
    """A Celery worker with interop.add and interop.tsum on `queue`."""
    celery_worker("ctasks", CELERY_TASKS.format(url=redis_url, queue=queue), queue)


@pytest.mark.timeout(120)
def test_kernel_canvas_runs_on_a_celery_worker(redis_url: str, queue: str,
                                               celery_on_queue: None) -> None:
    kapp = App("kernel-client", broker=redis_url, results=redis_url,
               config={"task_default_queue": queue})

    def sig(name: str, *args: Any) -> Signature:
        return Signature(f"interop.{name}", args, app=kapp)

    try:
        result = chain(sig("add", 1, 2), sig("add", 3)).apply_async()
        assert result.get(timeout=60) == 6, "the Celery worker sent the next step"
        body = chord([sig("add", i, i) for i in range(10)], sig("tsum")).apply_async()
        assert body.get(timeout=60) == 90, "the Celery worker counted kernel's chord"
    finally:
        kapp.close()


@pytest.mark.timeout(120)
def test_one_chord_counted_by_celery_and_kernel_workers_together(
        redis_url: str, queue: str, celery_on_queue: None) -> None:
    """Half the header runs on a Celery worker, half on a kernel worker: both count in
    Celery's keys (``.j``, ``.s``), and whichever finishes last sends the body, once."""
    kernel_queue = queue + "-kernel"
    kapp = App("kernel-side", broker=redis_url, results=redis_url,
               config={"task_default_queue": kernel_queue})
    bodies: list[str] = []

    @kapp.task(name="interop.add")
    def add(x: int, y: int) -> int:
        return x + y

    @kapp.task(name="interop.tsum", bind=True)
    def tsum(self: Any, values: list[int]) -> int:
        bodies.append(self.request.id)
        return sum(values)

    try:
        with running_worker(kapp, concurrency=2):
            header = [add.s(i, i).set(queue=queue if i % 2 else kernel_queue) for i in range(10)]
            result = chord(header, tsum.s().set(queue=kernel_queue)).apply_async()
            assert result.get(timeout=60) == 90
            assert bodies == [result.id], "the body ran once, on the kernel worker"
    finally:
        kapp.close()
