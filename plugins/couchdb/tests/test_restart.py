"""pouchdb-server (its databases on disk, as a CouchDB server keeps them) stopped and started
again on its port under a running kernel worker (prefork), while tasks run and more are sent:
no task fails, none runs twice, no result is lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.testing.restarts import worker_rides_out_a_restart
from kernel_couchdb.testing import PouchServer


@pytest.mark.timeout(300)
def test_a_running_worker_loses_no_result_when_the_server_restarts(
        tmp_path: Path, redis_url: str) -> None:
    with PouchServer(tmp_path / "pouch", in_memory=False) as server:
        worker_rides_out_a_restart(server, broker=redis_url, results=server.url("restart"),
                                   directory=tmp_path, forgets=False)
