"""A kernel worker whose results go to Azure Blob Storage: Azurite goes away while a task runs
and comes back (empty: the container is created again); the task's result is stored once it
is back, and the worker serves on."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from kernel import App
from kernel.testing.workers import running_worker
from kernel_azure_blob.testing import Azurite


@pytest.mark.timeout(120)
def test_the_worker_serves_on_when_azurite_goes_away_and_comes_back(tmp_path: Path) -> None:
    with Azurite(tmp_path / "azurite") as server:
        app = App("outage", broker="memory://", results=server.url(),
                  config={"broker_connection_timeout": 1.0})

        running = threading.Event()

        @app.task(name="add")
        def add(x: int, y: int) -> int:
            return x + y

        @app.task(name="slow")
        def slow(x: int) -> int:
            running.set()
            time.sleep(1.0)
            return x

        try:
            with running_worker(app, concurrency=1):
                assert add.delay(1, 2).get(timeout=15) == 3
                result = slow.delay(7)
                assert running.wait(15), "the task never started"
                server.kill()  # while it runs: its result has nowhere to go
                time.sleep(2.5)  # the outage lasts past the task and one store deadline
                server.start()  # in memory: the container is gone too, and is created again
                assert result.get(timeout=60) == 7, (
                    "the result of the task that ran during the outage must be stored once "
                    "Azurite is back")
                assert add.delay(2, 3).get(timeout=30) == 5, "the worker must serve on"
        finally:
            app.close()
