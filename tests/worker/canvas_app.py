"""The app the canvas tests run: tasks that book every run, so a test can assert that each task
of a canvas ran exactly once, and error callbacks that book each call."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from kernel import App, Task, group
from kernel.worker import Worker
from tests.helpers import wait_for


class Book:
    """Runs per task id and per task name, and error-callback calls, in arrival order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: Counter[str] = Counter()
        self.names: Counter[str] = Counter()
        self.errors: list[tuple[str, str]] = []

    def ran(self, task: Task[Any, Any]) -> None:
        with self.lock:
            self.runs[task.request.id] += 1
            self.names[task.name] += 1

    def assert_each_once(self, expected: int) -> None:
        twice = {k: v for k, v in self.runs.items() if v != 1}
        assert not twice, f"tasks ran more than once: {twice}"
        assert len(self.runs) == expected, (
            f"expected {expected} task runs, saw {len(self.runs)}: {dict(self.names)}")


def make_canvas_app(url: str, *, results: str | None = None, plugins: Sequence[object] = (),
                    **config: Any) -> tuple[App, Book]:
    """The app on broker `url` with a queue of its own; results on `url` unless given."""
    config.setdefault("task_default_queue", f"q-{uuid.uuid4().hex}")
    app = App("canvas", broker=url, results=results or url, plugins=plugins, config=config)
    book = Book()

    @app.task(name="add", bind=True)
    def add(self: Task[Any, Any], x: int, y: int) -> int:
        book.ran(self)
        return x + y

    @app.task(name="mul", bind=True)
    def mul(self: Task[Any, Any], x: int, y: int) -> int:
        book.ran(self)
        return x * y

    @app.task(name="tsum", bind=True)
    def tsum(self: Task[Any, Any], values: list[int]) -> int:
        book.ran(self)
        return sum(values)

    @app.task(name="listing", bind=True)
    def listing(self: Task[Any, Any], *values: Any) -> list[Any]:
        book.ran(self)
        return list(values)

    @app.task(name="fail", bind=True)
    def fail(self: Task[Any, Any], *args: Any) -> None:
        book.ran(self)
        raise KeyError("boom")

    @app.task(name="on_error", bind=True)
    def on_error(self: Task[Any, Any], failed_id: str, tag: str = "") -> None:
        with book.lock:
            book.errors.append((tag, failed_id))

    @app.task(name="flaky", bind=True, max_retries=5)
    def flaky(self: Task[Any, Any], x: int, failures: int) -> int:
        book.ran(self)
        if self.request.retries < failures:
            raise self.retry(exc=ConnectionError("not yet"), countdown=0.05)
        return x

    @app.task(name="becomes_add", bind=True)
    def becomes_add(self: Task[Any, Any], x: int) -> int:
        book.ran(self)
        return self.replace(add.s(x, x))

    @app.task(name="becomes_group", bind=True)
    def becomes_group(self: Task[Any, Any], n: int) -> list[int]:
        book.ran(self)
        return self.replace(group(add.s(i, i) for i in range(n)))

    return app, book


@contextmanager
def running(app: App, concurrency: int = 4) -> Iterator[Worker]:
    worker = Worker(app, pool="threads", concurrency=concurrency, shutdown_timeout=5)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


def drained(app: App, worker: Worker) -> None:
    """Wait until nothing is queued or running: every task the canvas sent has finished, so
    a second error callback, had one been sent, would have run already."""
    assert worker.consumer is not None
    consumer = worker.consumer

    def quiet() -> bool:
        return app.transport.size(app.conf.task_default_queue) == 0 and consumer.idle

    wait_for(quiet, 20, "the worker never went idle")
    # A message the last fetch took is neither waiting nor on the consumer's books until
    # `_reserve` has run: quiet through one more fetch that found nothing, it was none.
    seen = consumer.empty_fetches
    wait_for(lambda: quiet() and consumer.empty_fetches > seen, 20,
             "the worker never went idle")
