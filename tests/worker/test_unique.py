"""Unique tasks on the in-memory and SQLite stores: one handle while pending or running."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from kernel import App, Task
from kernel.worker import Worker
from tests.helpers import wait_for


@pytest.fixture
def app(app_factory: Any) -> Iterator[App]:
    app: App = app_factory("unique")
    gate = threading.Event()
    # Claims live in the store (a shared Redis too): names of their own keep runs apart.
    token = uuid.uuid4().hex

    @app.task(name=f"report-{token}", unique=True)
    def report(day: str) -> str:
        gate.wait(10)
        return f"report {day}"

    @app.task(name=f"sync_user-{token}", unique_key=lambda user, **_: user, unique_for=0.5)
    def sync_user(user: str, full: bool = False) -> str:
        return user

    @app.task(name=f"flaky-{token}", unique=True, bind=True)
    def flaky(self: Task[Any, Any]) -> int:
        if self.request.retries == 0:
            gate.wait(10)
            raise self.retry(countdown=0)
        return self.request.retries

    app.gate = gate  # type: ignore[attr-defined]
    app.t = {"report": report, "sync_user": sync_user, "flaky": flaky}  # type: ignore[attr-defined]
    yield app
    gate.set()


def test_a_second_send_while_pending_returns_the_first(app: App) -> None:
    first = app.t["report"].delay("monday")
    again = app.t["report"].delay("monday")
    other = app.t["report"].delay("tuesday")
    assert again.id == first.id and other.id != first.id
    queue = app.conf.task_default_queue
    assert app.transport.size(queue) == 2, "no duplicate message was published"
    report = app.t["report"]  # type: ignore[attr-defined]
    batch = app.send_many([(report, ("monday",), {}), (report, ("wednesday",), {})])
    assert batch[0].id == first.id and app.transport.size(queue) == 3


def test_the_claim_is_released_when_the_task_ends(app: App) -> None:
    worker = Worker(app, pool="threads", concurrency=2, shutdown_timeout=5)
    worker.start()
    try:
        first = app.t["report"].delay("friday")
        assert app.t["report"].delay("friday").id == first.id, "same while running"
        app.gate.set()  # type: ignore[attr-defined]
        assert first.get(timeout=10) == "report friday"
        wait_for(lambda: app.t["report"].delay("friday").id != first.id, 10,
                 "after the task ended a new send must be a new task")
    finally:
        worker.stop()


def test_unique_key_decides_what_counts_as_the_same_call_and_unique_for_bounds_it(
        app: App) -> None:
    first = app.t["sync_user"].delay("ada")
    assert app.t["sync_user"].delay("ada", full=True).id == first.id
    assert app.t["sync_user"].delay("bob").id != first.id
    # nobody runs it: the claim lapses after unique_for (0.5 s)
    wait_for(lambda: app.t["sync_user"].delay("ada").id != first.id, 10,
             "the claim must lapse after unique_for")


def test_a_retry_keeps_the_claim(app: App) -> None:
    worker = Worker(app, pool="threads", concurrency=2, shutdown_timeout=5)
    worker.start()
    try:
        first = app.t["flaky"].delay()
        app.gate.set()  # type: ignore[attr-defined]
        assert first.get(timeout=10) == 1
        assert app.t["flaky"].delay().id != first.id, "released after the retry finished"
    finally:
        worker.stop()


def test_a_revoked_unique_task_frees_its_claim(app: App) -> None:
    report = app.t["report"]  # type: ignore[attr-defined]
    first = report.delay("sunday")
    first.revoke()
    worker = Worker(app, pool="threads", concurrency=1, shutdown_timeout=5)
    worker.start()
    try:
        wait_for(lambda: report.delay("sunday").id != first.id, 10,
                 "a revoked unique task must free its claim when the worker skips it")
    finally:
        app.gate.set()  # type: ignore[attr-defined]
        worker.stop()
