"""The autoscaler's rule (`kernel.worker.autoscale`), step by step, on an in-process worker of
the threads pool: up to the tasks at hand at once (running, prefetched, queued), down to them
after KEEPALIVE seconds larger than needed, never outside its bounds."""

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


def test_the_pool_grows_with_the_backlog_and_shrinks_after_keepalive(
        busy: tuple[App, Worker, threading.Event]) -> None:
    app, worker, gate = busy
    scaler = Autoscaler(worker, 3, 1)
    assert scaler.step(now=0.0) == 0, "idle at its minimum: nothing to do"
    held = [app.tasks["hold"].delay() for _ in range(4)]
    wait_for(lambda: worker.load() == (1, 3), 10, "one task running, three waiting")
    grown = scaler.step(now=1.0)
    if grown == 1:  # a message being fetched as it looked was counted in neither place
        grown += scaler.step(now=1.5)
    assert grown == 2, "up to the backlog at once, but not beyond MAX"
    assert worker.options.concurrency == 3
    wait_for(lambda: worker.load()[0] == 3, 10, "the grown pool runs three at once")
    assert scaler.step(now=2.0) == 0, "at its maximum it grows no more"
    gate.set()
    for r in held:
        r.get(timeout=10)
    wait_for(lambda: worker.load() == (0, 0), 10, "the tasks done")
    assert scaler.step(now=10.0) == 0, "idle, but not yet for KEEPALIVE"
    assert scaler.step(now=10.0 + KEEPALIVE - 1) == 0
    assert scaler.step(now=10.0 + KEEPALIVE) == -2, "down to MIN, never below"
    assert worker.options.concurrency == 1
    assert scaler.step(now=20.0 + 2 * KEEPALIVE) == 0
    scaler.bounds(5, 3)
    assert scaler.step(now=22.0 + 2 * KEEPALIVE) == 2, "a new minimum applies at once"
    scaler.bounds(2, 1)
    assert scaler.step(now=23.0 + 2 * KEEPALIVE) == -1, "so does a new maximum"
    scaler.bounds(5, 2)
    assert scaler.step(now=24.0 + 2 * KEEPALIVE) == 0, "at its new minimum already"
    assert scaler.info() == {"max": 5, "min": 2, "qty": 2}
