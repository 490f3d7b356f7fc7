"""A kernel client's chords on kernel workers over CouchDB: they run on celery.chord_unlock
(as Celery's CouchDB backend's do), the body gets every value in the header's order, and a
failed member fails the body with a ChordError naming it."""

from __future__ import annotations

import pytest

from kernel import App, ChordError, chord
from kernel.testing.workers import running_worker


@pytest.mark.timeout(90)
def test_chords_complete_on_kernel_workers(couchdb_url: str) -> None:
    app = App("chords", broker="memory://", results=couchdb_url,
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
