"""Kernel workers on a result store: the worker tests a store plugin runs beside
`ResultStoreSuite`, with real worker threads in the test's own process (`running_worker`, the
memory broker), so that only the store is under test::

    from kernel.testing.store_workers import StoreWorkerSuite

    class TestWorkersOnMyStore(StoreWorkerSuite):
        @pytest.fixture
        def results_url(self, my_server):
            return my_server.url

A chord completes with every member's value in the header's order, and a failed member fails
its body with a `ChordError` naming it, on whichever path the store takes (its atomic counter,
or ``celery.chord_unlock``); a task that reads a record that does not decode fails with the
sentence saying so, and the worker serves on. `config` adds settings to every App; `plant`
writes the record that does not decode (by default through the store's own `set`: override it
where the store's layout has another way in), and `undecodable` is what the failure says.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

import pytest

from kernel import App, ChordError, chord
from kernel.testing.workers import running_worker

__all__ = ["StoreWorkerSuite"]


class StoreWorkerSuite:
    """Subclass with a ``results_url`` fixture (a URL of the store under test)."""

    #: settings every App of the suite gets (``{"arangodb_create_collection": True}``).
    config: ClassVar[dict[str, Any]] = {}
    #: the failure of a task that reads the planted record matches this (``{task_id}``: its id).
    undecodable = r"the result of task {task_id} .* does not decode"

    def plant(self, app: App, task_id: str) -> None:
        """Store, under `task_id`'s record key, bytes that are no record."""
        store = app.backend.store
        assert store is not None
        store.set([(f"celery-task-meta-{task_id}", b"\x00garbage")], None)

    @pytest.mark.timeout(90)
    def test_chords_complete_on_kernel_workers(self, results_url: str) -> None:
        app = App("chords", broker="memory://", results=results_url,
                  config={"result_chord_retry_interval": 0.2, **self.config})

        @app.task(name="c.square")
        def square(x: int) -> int:
            if x < 0:
                raise ValueError(f"negative {x}")
            return x * x

        @app.task(name="c.collect")
        def collect(values: list[int]) -> list[int]:
            return values

        try:
            with running_worker(app, concurrency=4):
                result = chord([square.s(i) for i in range(8)])(collect.s())
                assert result.get(timeout=40) == [i * i for i in range(8)], \
                    "the body gets every member's value, in the header's order"
                failing = chord([square.s(1), square.s(-2), square.s(3)])(collect.s())
                with pytest.raises(ChordError, match="negative -2"):
                    failing.get(timeout=40)
        finally:
            app.close()

    @pytest.mark.timeout(60)
    def test_a_record_that_does_not_decode_fails_one_task_and_the_worker_serves_on(
            self, results_url: str) -> None:
        app = App("odd", broker="memory://", results=results_url, config=dict(self.config))
        broken = uuid.uuid4().hex

        @app.task(name="odd.read")
        def read(task_id: str) -> object:
            return app.AsyncResult(task_id).get(timeout=2)

        @app.task(name="odd.add")
        def add(x: int, y: int) -> int:
            return x + y

        try:
            self.plant(app, broken)
            with running_worker(app, concurrency=2):
                with pytest.raises(Exception, match=self.undecodable.format(task_id=broken)):
                    read.delay(broken).get(timeout=20)
                assert add.delay(20, 22).get(timeout=20) == 42, "the worker serves on"
        finally:
            app.close()
