"""The fake Riak node of `kernel_riak.testing` (in this process, on loopback; it keeps its
objects across a stop, as a node keeps its disk) stopped and started again on its port under a
running kernel worker (prefork, in processes of its own) while tasks run and more are sent: no
task fails, none runs twice, no result is lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.testing.restarts import worker_rides_out_a_restart
from kernel_riak.testing import RiakFake


@pytest.mark.timeout(300)
def test_a_running_worker_loses_no_result_when_the_node_restarts(
        tmp_path: Path, redis_url: str, only_fake: RiakFake) -> None:
    with RiakFake(log=tmp_path / "riak-requests.log") as node:
        worker_rides_out_a_restart(node, broker=redis_url, results=node.url("restart"),
                                   directory=tmp_path, forgets=False)
