"""The fake ArangoDB of `kernel_arangodb.testing` (in this process, on loopback; it keeps its
documents across a stop, as a server keeps its disk) stopped and started again on its port
under a running kernel worker (prefork, in processes of its own) while tasks run and more are
sent: no task fails, none runs twice, no result is lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.testing.restarts import worker_rides_out_a_restart
from kernel_arangodb.store import ArangoDBStore
from kernel_arangodb.testing import ArangoFake


@pytest.mark.timeout(300)
def test_a_running_worker_loses_no_result_when_the_server_restarts(
        tmp_path: Path, redis_url: str, only_fake: ArangoFake) -> None:
    with ArangoFake(credentials=("root", "kernel-test"),
                    log=tmp_path / "arangodb-requests.log") as server:
        url = server.url("celery", "restart")
        made = ArangoDBStore(url, {"arangodb_create_collection": True})
        made.set([("made", b"1")], None)
        made.close()
        worker_rides_out_a_restart(server, broker=redis_url, results=url, directory=tmp_path,
                                   forgets=False)
