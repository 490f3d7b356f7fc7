"""A kernel worker (in the test's own process, where the fake cluster is: mockylla stands in
for Cassandra here) on the Cassandra store: chords run on celery.chord_unlock (as Celery's
Cassandra backend's do), the body gets every value in the header's order, a failed member
fails the body with a ChordError naming it; a record that does not decode, read by a task, is
that task's failure in one sentence, and the worker serves on."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from kernel import App, ChordError, chord
from kernel.testing.workers import running_worker
from kernel_cassandra.store import INSERT_TASK, CassandraStore


@pytest.mark.timeout(90)
def test_chords_complete_on_kernel_workers(cassandra_url: str) -> None:
    app = App("chords", broker="memory://", results=cassandra_url,
              config={"result_chord_retry_interval": 0.2})

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
            assert result.get(timeout=40) == [i * i for i in range(8)]
            failing = chord([square.s(1), square.s(-2), square.s(3)])(collect.s())
            with pytest.raises(ChordError, match="negative -2"):
                failing.get(timeout=40)
    finally:
        app.close()


@pytest.mark.timeout(60)
def test_a_record_that_does_not_decode_fails_the_task_reading_it(cassandra_url: str) -> None:
    app = App("odd", broker="memory://", results=cassandra_url)

    @app.task(name="peek")
    def peek(task_id: str) -> object:
        return app.AsyncResult(task_id).get(timeout=5)

    @app.task(name="add")
    def add(x: int, y: int) -> int:
        return x + y

    try:
        store = app.backend.store
        assert isinstance(store, CassandraStore)
        store._execute("plant", INSERT_TASK, ["odd", "SUCCESS", b"\x00 not a record",
                                              datetime.now(timezone.utc), b"null", b"null"],
                       write=True)
        with running_worker(app, concurrency=1):
            with pytest.raises(Exception, match="does not decode"):
                peek.delay("odd").get(timeout=20)
            assert add.delay(20, 22).get(timeout=20) == 42, "the worker serves on"
    finally:
        app.close()
