"""noida-db (its data on disk, as an Elasticsearch node keeps its indices) stopped and started
again on its port under a running kernel worker (prefork), while tasks run and more are sent:
no task fails, none runs twice, no result is lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.testing.restarts import worker_rides_out_a_restart
from kernel_elasticsearch.testing import NoidaServer


@pytest.mark.timeout(300)
def test_a_running_worker_loses_no_result_when_the_server_restarts(
        tmp_path: Path, redis_url: str) -> None:
    with NoidaServer(tmp_path / "noida") as server:
        worker_rides_out_a_restart(server, broker=redis_url, results=server.url("restart"),
                                   directory=tmp_path, forgets=False)
