"""``--autoscale MAX,MIN`` on a real worker process: it starts at MIN, grows with the backlog
to MAX and no further, shrinks back to MIN once idle for the keepalive; a pool that cannot
resize is refused with a sentence."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from kernel.testing.transport import wait_for
from kernel.testing.workers import WorkerProcess
from tests.workerops.conftest import client, kernel, write_tasks


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_grows_with_the_backlog_and_shrinks_when_idle(broker: str, tmp_path: Path,
                                                      pool: str) -> None:
    spec = write_tasks(tmp_path)
    w = WorkerProcess(spec, broker=broker, results=broker, path=tmp_path, pool=pool,
                      log=tmp_path / "w.log", loglevel="info", args=["--autoscale", "3,1"],
                      nodename=f"as-{pool}@{socket.gethostname()}",
                      env={"KERNEL_AUTOSCALE_KEEPALIVE": "2"}).start()
    try:
        w.wait_ready(60)
        assert f"{pool}, concurrency 1" in w.output(), "it starts at MIN"
        app = client(broker, spec, tmp_path)
        try:
            results = [app.send_task("ops.sleep", (1.5,)) for _ in range(8)]
            wait_for(lambda: "pool 1 -> 3" in w.output(), 30, "the pool to grow to MAX")
            assert [r.get(timeout=60) for r in results] == [1.5] * 8
        finally:
            app.close()
        wait_for(lambda: re.search(r"pool 3 -> 1$", w.output(), re.M), 30,
                 "the pool to shrink back to MIN")
    finally:
        w.stop()
    sizes = [int(n) for n in re.findall(r"pool \d+ -> (\d+)", w.output())]
    assert max(sizes) == 3 and min(sizes) == 1, sizes


def test_a_pool_that_cannot_resize_is_refused(tmp_path: Path) -> None:
    spec = write_tasks(tmp_path)
    done = kernel("worker", "-A", spec, "-P", "solo", "--autoscale", "4,2",
                  broker=f"sqlite:///{tmp_path / 'k.db'}", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: --autoscale needs a pool that can grow and shrink; "
                                   "the solo pool cannot (use -P threads or prefork)")
