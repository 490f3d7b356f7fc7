"""Kernel workers on the Riak store (the fake of `kernel_riak.testing`, or a real node with
``KERNEL_TEST_RIAK_URL``): chords run on celery.chord_unlock, as Celery's Riak backend ran
them, the body getting every value in the header's order and a failed member failing it with
a ChordError naming it; a task that meets a record that does not decode fails with that
sentence, and the worker serves on."""

from __future__ import annotations

import uuid

import pytest

from kernel import App, ChordError, chord
from kernel.testing.workers import running_worker
from kernel_riak.store import RiakStore


@pytest.mark.timeout(90)
def test_chords_complete_on_kernel_workers(riak_url: str) -> None:
    app = App("chords", broker="memory://", results=riak_url,
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


def test_a_record_that_does_not_decode_fails_one_task_and_the_worker_serves_on(
        riak_url: str) -> None:
    app = App("odd", broker="memory://", results=riak_url)
    broken = uuid.uuid4().hex

    @app.task(name="odd.read")
    def read(task_id: str) -> object:
        return app.AsyncResult(task_id).get(timeout=2)

    @app.task(name="odd.add")
    def add(x: int, y: int) -> int:
        return x + y

    try:
        RiakStore(riak_url, {}).set([(f"celery-task-meta-{broken}", b"\x00garbage")], None)
        with running_worker(app, concurrency=2):
            with pytest.raises(Exception, match=f"the result of task {broken} .* does not "
                               "decode"):
                read.delay(broken).get(timeout=20)
            assert add.delay(20, 22).get(timeout=20) == 42, "the worker serves on"
    finally:
        app.close()
