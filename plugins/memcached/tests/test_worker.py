"""A kernel worker on the Memcached store: a result over the server's item size is recorded as
a FAILURE that says so, and the worker serves on; chords complete (or fail) in Celery's
layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from pymemcache.client.base import Client

from kernel import App, ChordError, chord
from kernel.testing.workers import running_worker
from kernel_memcached.testing import MemcachedServer


def test_a_result_too_large_is_recorded_as_a_failure_and_the_worker_serves_on(
        tmp_path: Path) -> None:
    with MemcachedServer(tmp_path) as server:  # the default 1 MiB items
        app = App("too-large", broker="memory://", results=server.url)

        @app.task(name="big")
        def big(n: int) -> str:
            return "x" * n

        try:
            with running_worker(app, concurrency=1):
                with pytest.raises(Exception, match="more than Memcached .* keeps in one item"):
                    big.delay(2 * 1024 * 1024).get(timeout=15)
                assert big.delay(3).get(timeout=15) == "xxx", "the worker must serve on"
        finally:
            app.close()


def test_chords_complete_on_kernel_workers_in_celerys_layout(memcached_url: str) -> None:
    """A kernel client's chord on kernel workers, counted on Celery's chord-unlock-<gid>: the
    body gets every value in the header's order; one failed member fails the body with a
    ChordError naming it; the chord's keys are gone once it finished."""
    app = App("chords", broker="memory://", results=memcached_url)

    @app.task(name="c.square")
    def square(x: int) -> int:
        if x < 0:
            raise ValueError(f"negative {x}")
        return x * x

    @app.task(name="c.collect")
    def collect(values: list[int]) -> list[int]:
        return values

    host, port = memcached_url.removeprefix("cache+memcached://").rstrip("/").split(":")
    raw = Client((host, int(port)))
    try:
        with running_worker(app, concurrency=4):
            result = chord([square.s(i) for i in range(12)])(collect.s())
            assert result.get(timeout=20) == [i * i for i in range(12)]
            assert result.parent is not None, "a chord's result has its header as parent"
            gid = result.parent.id
            assert raw.get(f"chord-unlock-{gid}") is None, "the counter is deleted"
            assert raw.get(f"celery-taskset-meta-{gid}") is None, "so is the group record"
            failing = chord([square.s(1), square.s(-2), square.s(3)])(collect.s())
            with pytest.raises(ChordError, match="negative -2"):
                failing.get(timeout=20)
    finally:
        raw.close()
        app.close()
