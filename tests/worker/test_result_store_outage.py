"""No acknowledgement without the result: a worker that cannot reach the result store keeps
the result and retries, the message unacknowledged meanwhile; when it must give up, the
message goes back to the broker and the task runs again. The store here is the in-memory one
behind a switch that makes every write raise ConnectionFailed, as a store whose server went
away does (tests/faults covers a real Redis going away)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pytest

from kernel import App
from kernel.errors import ConnectionFailed
from kernel.plugin import ResultStoreCapabilities, ResultStoreSpec, hookimpl
from kernel.std.memory.results import MemoryResultStore
from kernel.testing.transport import wait_for
from kernel.testing.workers import running_worker

DOWN = threading.Event()


class SwitchedStore(MemoryResultStore):
    """``switched://NAME``: the memory store, unreachable for writes while `DOWN` is set."""

    capabilities = ResultStoreCapabilities(push_wait=True, atomic_counter=True,
                                           persistent=False, multi_process=False)

    def __init__(self, url: str, options: Any = None) -> None:
        super().__init__(url.replace("switched://", "memory://"), options)

    def set(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        if DOWN.is_set() and any(key.startswith("celery-task-meta-") for key, _ in items):
            raise ConnectionFailed("cannot reach the switched store (switched off by the test)")
        super().set(items, expires)


class Switched:
    @hookimpl
    def kernel_result_stores(self) -> Iterable[ResultStoreSpec]:
        yield ResultStoreSpec("switched", ("switched",), SwitchedStore,
                              SwitchedStore.capabilities)


@pytest.fixture
def app() -> Iterator[App]:
    DOWN.clear()
    name = uuid.uuid4().hex
    app = App("outage", broker=f"memory://{name}", results=f"switched://{name}",
              plugins=[Switched()], config={
                  "task_default_queue": "q", "task_track_sent": False,
                  "result_backend_base_sleep_between_retries_ms": 5,
                  "result_backend_max_sleep_between_retries_ms": 20})
    app.runs = []  # type: ignore[attr-defined]

    @app.task(name="work")
    def work(n: int) -> int:
        app.runs.append(n)  # type: ignore[attr-defined]
        return n * 2

    @app.task(name="after")
    def after(value: int) -> int:
        app.runs.append(("after", value))  # type: ignore[attr-defined]
        return value

    yield app
    DOWN.clear()
    app.close()


def test_the_result_is_kept_and_stored_once_the_store_is_back(app: App) -> None:
    with running_worker(app, concurrency=1) as worker:
        DOWN.set()
        sent = app.tasks["work"].apply_async((21,), link=app.tasks["after"].s())
        wait_for(lambda: app.runs == [21], 10, "the task to run")
        consumer = worker.consumer
        assert consumer is not None
        wait_for(lambda: consumer.counters.processed == 0 and consumer.held == 1, 10,
                 "the message held, unacknowledged, while the result cannot be stored")
        assert app.transport.size("q") == 0, "the callback is not sent before the result"
        DOWN.clear()
        assert sent.get(timeout=10) == 42
        wait_for(lambda: ("after", 42) in app.runs, 10, "the callback, once the result is in")
        wait_for(lambda: consumer.idle, 10, "the message acknowledged")
    assert app.runs.count(21) == 1, "the task ran once: the worker waited with its result"


def test_giving_up_puts_the_message_back_and_the_task_runs_again(app: App) -> None:
    app.conf.result_backend_max_retries = 3
    with running_worker(app, concurrency=1) as worker:
        DOWN.set()
        sent = app.tasks["work"].delay(5)
        wait_for(lambda: app.runs.count(5) >= 2, 10, "the task to run again after giving up")
        consumer = worker.consumer
        assert consumer is not None and consumer.counters.requeued >= 1
        DOWN.clear()
        assert sent.get(timeout=10) == 10


def test_a_revoked_task_is_acknowledged_only_once_its_record_is_written(app: App) -> None:
    app.conf.result_backend_max_retries = 0
    with running_worker(app, concurrency=1) as worker:
        consumer = worker.consumer
        assert consumer is not None
        consumer.filters.append(lambda request: RuntimeError("refused by the test"))
        DOWN.set()
        sent = app.tasks["work"].delay(7)
        wait_for(lambda: consumer.counters.requeued >= 1, 10,
                 "the message to go back, its REVOKED record not written")
        DOWN.clear()
        # Acknowledged with its record unwritten, the message would be gone: no record ever.
        wait_for(lambda: sent.state == "REVOKED", 10, "the REVOKED record, once the store is back")
        wait_for(lambda: consumer.idle and app.transport.size("q") == 0, 10,
                 "the message acknowledged once its record is in")
    assert app.runs == [], "a revoked task never runs"
