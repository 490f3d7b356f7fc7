"""memcached stopped and started again on its port under a running kernel worker (prefork),
while tasks run and more are sent: no task fails, none runs twice, and every result written
once the server is back is readable. What the old process held is gone (memcached keeps
nothing across a restart; docs/stores/memcached.md says so)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.testing.restarts import worker_rides_out_a_restart
from kernel_memcached.testing import MemcachedServer


@pytest.mark.timeout(240)
def test_a_running_worker_serves_on_through_a_memcached_restart(
        tmp_path: Path, redis_url: str) -> None:
    with MemcachedServer(tmp_path / "memcached") as server:
        worker_rides_out_a_restart(server, broker=redis_url, results=server.url,
                                   directory=tmp_path, forgets=True)
