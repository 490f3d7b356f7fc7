"""DynamoDB (dynalite, its tables on disk as DynamoDB keeps them) stopped and started again on
its port under a running kernel worker (prefork), while tasks run and more are sent (the kit:
kernel.testing.restarts): no task fails, none runs twice, no result is lost.

moto is not restarted under a worker here: it takes seconds to start on a busy machine (its
imports), longer than a worker's store waits (4 s, broker_connection_timeout), and then the
worker rightly logs an error; test_store.py restarts it under a store, which makes the table
again."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.testing.restarts import worker_rides_out_a_restart
from kernel_dynamodb.testing import Dynalite


@pytest.mark.timeout(300)
def test_a_running_worker_loses_no_result_when_dynalite_restarts(
        tmp_path: Path, redis_url: str) -> None:
    with Dynalite(tmp_path / "dynalite") as server:
        worker_rides_out_a_restart(server, broker=redis_url, results=server.url("restart"),
                                   directory=tmp_path, forgets=False)

