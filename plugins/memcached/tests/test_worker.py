"""A kernel worker on the Memcached store: a result over the server's item size is recorded as
a FAILURE that says so, and the worker serves on."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel import App
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
