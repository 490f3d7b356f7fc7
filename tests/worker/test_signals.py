"""Task signals: each hook fires once per message at its moment, through plugins or
``App.connect``, and an observer that raises breaks nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from kernel import App, ConfigurationError, Task, hookimpl, states
from kernel.worker import Worker
from tests.helpers import wait_for

Seen = list[tuple[str, Any]]


class Recorder:
    """A plugin recording every signal it receives."""

    def __init__(self) -> None:
        self.seen: Seen = []

    @hookimpl
    def kernel_before_publish(self, envelope: Any, queue: str) -> None:
        envelope.headers["stamped"] = "yes"
        self.seen.append(("before_publish", (envelope.headers["id"], queue)))

    @hookimpl
    def kernel_after_publish(self, envelope: Any) -> None:
        self.seen.append(("after_publish", envelope.headers["id"]))

    @hookimpl
    def kernel_task_received(self, request: Any) -> None:
        self.seen.append(("received", (request.id, request.headers.get("stamped"))))

    @hookimpl
    def kernel_task_prerun(self, call: Any) -> None:
        self.seen.append(("prerun", call.request.id))

    @hookimpl
    def kernel_task_postrun(self, call: Any) -> None:
        self.seen.append(("postrun", (call.request.id, call.state)))

    @hookimpl
    def kernel_task_success(self, call: Any) -> None:
        self.seen.append(("success", (call.request.id, call.value)))

    @hookimpl
    def kernel_task_failure(self, call: Any) -> None:
        self.seen.append(("failure", (call.request.id, type(call.value).__name__)))

    @hookimpl
    def kernel_task_retry(self, call: Any) -> None:
        self.seen.append(("retry", call.request.id))

    @hookimpl
    def kernel_task_revoked(self, request: Any, reason: str) -> None:
        self.seen.append(("revoked", (request.id, reason)))


@pytest.fixture
def recorded() -> Iterator[tuple[App, Recorder]]:
    recorder = Recorder()
    url = f"memory://{uuid.uuid4().hex}"
    app = App("signals", broker=url, results=url, plugins=[recorder])

    @app.task(name="ok")
    def ok(x: int) -> int:
        return x + 1

    @app.task(name="bad")
    def bad() -> None:
        raise KeyError("x")

    @app.task(name="again", bind=True)
    def again(self: Task[Any, Any]) -> str:
        if self.request.retries == 0:
            raise self.retry(countdown=0)
        return "done"

    worker = Worker(app, pool="threads", concurrency=2, shutdown_timeout=5)
    worker.start()
    yield app, recorder
    worker.stop()
    app.close()


def events(recorder: Recorder, kind: str) -> list[Any]:
    return [value for name, value in recorder.seen if name == kind]


def test_hook_kernel_before_publish(recorded: tuple[App, Recorder]) -> None:
    app, rec = recorded
    result = app.tasks["ok"].delay(1)
    assert events(rec, "before_publish") == [(result.id, "celery")]
    result.get(timeout=10)
    assert (result.id, "yes") in events(rec, "received"), "before_publish may change headers"


def test_hook_kernel_after_publish(recorded: tuple[App, Recorder]) -> None:
    app, rec = recorded
    results = app.send_many([("ok", (i,), {}) for i in range(3)])
    assert events(rec, "after_publish") == [r.id for r in results]


def test_hook_kernel_task_received(recorded: tuple[App, Recorder]) -> None:
    app, rec = recorded
    result = app.tasks["ok"].delay(1)
    result.get(timeout=10)
    assert [e for e in events(rec, "received") if e[0] == result.id] == [(result.id, "yes")]


def test_hook_kernel_task_prerun(recorded: tuple[App, Recorder]) -> None:
    app, rec = recorded
    result = app.tasks["ok"].delay(1)
    result.get(timeout=10)
    wait_for(lambda: ("postrun", (result.id, states.SUCCESS)) in rec.seen, 10, "no postrun")
    order = [name for name, value in rec.seen
             if value == result.id or (isinstance(value, tuple) and value[0] == result.id)]
    assert order == ["before_publish", "after_publish", "received", "prerun", "success",
                     "postrun"]


def test_hook_kernel_task_postrun(recorded: tuple[App, Recorder]) -> None:
    app, rec = recorded
    bad = app.tasks["bad"].delay()
    with pytest.raises(KeyError):
        bad.get(timeout=10)
    wait_for(lambda: (bad.id, states.FAILURE) in events(rec, "postrun"), 10, "no postrun")


def test_hook_kernel_task_success(recorded: tuple[App, Recorder]) -> None:
    app, rec = recorded
    result = app.tasks["ok"].delay(41)
    assert result.get(timeout=10) == 42
    wait_for(lambda: (result.id, 42) in events(rec, "success"), 10, "no success signal")


def test_hook_kernel_task_failure(recorded: tuple[App, Recorder]) -> None:
    app, rec = recorded
    bad = app.tasks["bad"].delay()
    with pytest.raises(KeyError):
        bad.get(timeout=10)
    wait_for(lambda: (bad.id, "KeyError") in events(rec, "failure"), 10, "no failure signal")
    assert not events(rec, "success")


def test_hook_kernel_task_retry(recorded: tuple[App, Recorder]) -> None:
    app, rec = recorded
    result = app.tasks["again"].delay()
    assert result.get(timeout=10) == "done"
    assert events(rec, "retry") == [result.id]


def test_hook_kernel_task_revoked(recorded: tuple[App, Recorder]) -> None:
    app, rec = recorded
    expired = app.tasks["ok"].apply_async((1,), expires=-1)
    wait_for(lambda: (expired.id, "expired") in events(rec, "revoked"), 10, "no revoked signal")
    assert expired.state == states.REVOKED


def test_connect_registers_a_plain_function_and_a_raising_one_breaks_nothing() -> None:
    url = f"memory://{uuid.uuid4().hex}"
    app = App("connect", broker=url, results=url)
    seen: list[Any] = []

    @app.task(name="ok")
    def ok() -> str:
        return "fine"

    def broken(call: Any) -> None:
        raise RuntimeError("observer bug")

    app.connect("task_success", lambda call: seen.append(call.value))
    app.connect("task_prerun", broken)
    with pytest.raises(ConfigurationError, match="did you mean 'task_success'"):
        app.connect("task_sucess", print)
    worker = Worker(app, pool="threads", concurrency=1, shutdown_timeout=5)
    worker.start()
    try:
        assert ok.delay().get(timeout=10) == "fine"
        wait_for(lambda: seen == ["fine"], 10, "the connected function was not called")
    finally:
        worker.stop()
        app.close()
