"""A kernel worker on the Cosmos DB store serves on through what the account does to it: a run
of throttled answers while it stores a result, and the emulator killed and started again (empty:
the store makes the database and container again)."""

from __future__ import annotations

from pathlib import Path

from kernel import App
from kernel.testing.workers import running_worker
from kernel_cosmosdb.testing import CosmosProxy, CosmosServer


def _app(url: str) -> App:
    app = App("cosmos-worker", broker="memory://", results=url)

    @app.task(name="add")
    def add(x: int, y: int) -> int:
        return x + y

    return app


def test_a_worker_stores_its_results_through_throttling(proxy: CosmosProxy,
                                                        proxy_url: str) -> None:
    """The 429s come from the proxy (the emulator never throttles)."""
    app = _app(proxy_url)
    try:
        with running_worker(app, concurrency=1):
            assert app.send_task("add", (1, 2)).get(timeout=20) == 3
            proxy.fail_next(429, count=4, headers={"x-ms-retry-after-ms": "50"})
            assert app.send_task("add", (2, 3)).get(timeout=20) == 5, \
                "throttled writes are retried, not lost"
    finally:
        app.close()


def test_a_worker_serves_on_after_the_emulator_restarts(tmp_path: Path) -> None:
    server = CosmosServer(tmp_path).start()
    app = _app(server.url())
    try:
        with running_worker(app, concurrency=1):
            assert app.send_task("add", (1, 1)).get(timeout=20) == 2
            server.kill()
            server.start()  # empty: no database, no container
            assert app.send_task("add", (2, 2)).get(timeout=30) == 4, \
                "the worker must serve on once the account is back"
    finally:
        app.close()
        server.stop()
