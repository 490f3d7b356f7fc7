"""The autoscaler's rule (`kernel.worker.autoscale`), step by step, on an in-process worker of
the threads pool: up by one while every thread is busy and tasks wait, down by one after
KEEPALIVE seconds with a thread idle, never outside its bounds."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from kernel import App
from kernel.worker import Worker
from kernel.worker.autoscale import KEEPALIVE, Autoscaler
from tests.helpers import wait_for
from tests.worker.conftest import make_app


@pytest.fixture
def busy(broker_url: str) -> Iterator[tuple[App, Worker, threading.Event]]:
    app = make_app("autoscale", broker_url)
    gate = threading.Event()

    @app.task(name="hold")
    def hold() -> None:
        gate.wait(20)

    worker = Worker(app, pool="threads", concurrency=1, shutdown_timeout=5,
                    nodename=f"as@{app.conf.task_default_queue}")
    worker.start()
    yield app, worker, gate
    gate.set()
    worker.stop()
    app.close()


def test_the_pool_grows_while_busy_and_shrinks_after_keepalive(
        busy: tuple[App, Worker, threading.Event]) -> None:
    app, worker, gate = busy
    scaler = Autoscaler(worker, 3, 1)
    assert scaler.step(now=0.0) == 0, "idle at its minimum: nothing to do"
    held = [app.tasks["hold"].delay() for _ in range(4)]
    for size in (2, 3):
        wait_for(lambda: worker.load()[0] == worker.options.concurrency
                 and worker.load()[1] > 0, 10, "every thread busy, tasks waiting")
        assert scaler.step(now=1.0) == 1
        assert worker.options.concurrency == size
    wait_for(lambda: worker.load()[0] == 3, 10, "the grown pool runs three at once")
    assert scaler.step(now=2.0) == 0, "at its maximum it grows no more"
    gate.set()
    for r in held:
        r.get(timeout=10)
    assert scaler.step(now=10.0) == 0, "idle, but not yet for KEEPALIVE"
    assert scaler.step(now=10.0 + KEEPALIVE) == -1
    assert worker.options.concurrency == 2
    scaler.bounds(1, 1)
    assert scaler.step(now=11.0 + KEEPALIVE) == -1, "a new maximum applies at once"
    assert worker.options.concurrency == 1
    assert scaler.info() == {"max": 1, "min": 1, "qty": 1}
