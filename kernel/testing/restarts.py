"""A result store's server stopped and started again on its port under a running kernel worker
(real worker processes, a real broker), while tasks run and while more are sent: what issue 18
asks of every store ("reconnect after a server restart: no result lost, no task failed")::

    from kernel.testing.restarts import worker_rides_out_a_restart

    def test_a_worker_rides_out_a_restart(tmp_path, redis_url):
        with MyServer(tmp_path / "server") as server:
            worker_rides_out_a_restart(server, broker=redis_url, results=server.url,
                                       directory=tmp_path, forgets=False)

It sends 200 tasks; once 40 have run it stops the server, sends 100 more while the server is
down (each send writes its PENDING record first, so the client rides the outage out too),
starts the server again `outage` seconds later on the same port, and sends 100 more. Each task
appends ``<x> <start> <end>`` to a file of its own as it returns; the first one returns only
once the server is down, so its result is written during the outage. Then it asserts:

* every task ran exactly once (none lost, none run twice: the worker holds a message whose
  result it cannot yet store, and retries the write, rather than letting it run again);
* the outage was met: the first task returned while the server was down;
* no task is recorded as failed, and every task that returned after the server stopped (its
  result written during the outage or after it) has its result readable, with its value;
* with `forgets` False (a server that keeps its data across a restart) every other result is
  readable too; with `forgets` True (memcached, an in-memory emulator) a result written before
  the stop may be gone (PENDING), never wrong;
* the workers logged no error.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from kernel import states
from kernel.testing.servers import Restartable
from kernel.testing.workers import Workers

__all__ = ["TASKS", "worker_rides_out_a_restart"]

#: the tasks' module: ``restart.double(x)`` returns ``2 * x`` and logs its run (one write to a
#: file opened for appending: lines from several processes never mix).
TASKS = """\
import os
import time

from kernel import App

app = App("restart")


@app.task(name="restart.double")
def double(x):
    started = time.time()
    time.sleep(0.02)
    gate = os.environ["KERNEL_TEST_GATE"]
    deadline = time.monotonic() + 60
    while x == 0 and not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.005)  # the first task returns once the server is down
    fd = os.open(os.environ["KERNEL_TEST_RUNS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{x} {started!r} {time.time()!r}\\n".encode())
    finally:
        os.close(fd)
    return 2 * x
"""

BEFORE, DURING, AFTER = range(0, 200), range(200, 300), range(300, 400)


def _runs(path: Path) -> list[tuple[int, float, float]]:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    return [(int(x), float(a), float(b)) for x, a, b in (line.split() for line in lines)]


def worker_rides_out_a_restart(server: Restartable, *, broker: str, results: str,
                               directory: Path, forgets: bool, pool: str = "prefork",
                               concurrency: int = 2, outage: float = 1.0,
                               timeout: float = 120.0,
                               client_config: dict[str, Any] | None = None) -> None:
    """Run the scenario of the module's docstring against the running `server` (which
    `results` names) and assert what it says; the workers' logs are in `directory`."""
    (directory / "restart_tasks.py").write_text(TASKS)
    runs, gate = directory / "runs.txt", directory / "stopped"
    # The outage is shorter than the time a send (and a worker's write) keeps trying.
    config = {"broker_connection_timeout": max(10.0, 4 * outage), **(client_config or {})}
    with Workers("restart_tasks:app", broker=broker, results=results, path=directory,
                 logs=directory, env={"KERNEL_TEST_RUNS": str(runs), "KERNEL_TEST_GATE": str(gate)},
                 client_config=config) as workers:
        workers.start(pool=pool, concurrency=concurrency, loglevel="info")

        def send(xs: range) -> dict[int, str]:
            sent = workers.client.send_many([("restart.double", (x,), {}) for x in xs],
                                            queue=workers.queue)
            return {x: r.id for x, r in zip(xs, sent, strict=True)}

        ids = send(BEFORE)
        workers.wait(lambda: len(_runs(runs)) >= 40, 60, "40 tasks to run before the stop")
        server.stop()
        stopped = time.time()  # a write before this may have reached the old process
        gate.touch()  # task 0 returns now: its result is written while the server is down
        up: list[float] = []

        def start_again() -> None:
            server.start()
            up.append(time.time())

        restarting = threading.Timer(outage, start_again)
        restarting.start()
        try:
            ids.update(send(DURING))  # each send waits for the server to write PENDING
        finally:
            restarting.join()
        assert up, f"{server.name} did not start again; see {server.log}"
        ids.update(send(AFTER))

        total = len(BEFORE) + len(DURING) + len(AFTER)
        workers.wait(lambda: len(_runs(runs)) >= total, timeout, f"all {total} tasks to run")
        done = _runs(runs)
        counted: dict[int, int] = {}
        for x, _, _ in done:
            counted[x] = counted.get(x, 0) + 1
        twice = sorted(x for x, n in counted.items() if n > 1)
        assert not twice, f"tasks ran more than once: {twice[:10]} ({workers.describe()})"
        assert sorted(counted) == sorted(ids), "every task sent ran"
        assert any(x == 0 and stopped <= end <= up[0] for x, _, end in done), \
            "task 0 did not return while the server was down: the outage was not met"

        must = {x: end for x, _, end in done if end >= stopped or not forgets}
        try:
            workers.wait_succeeded([ids[x] for x in must], timeout)
        except AssertionError as exc:
            missing = [f"{x} ({workers.client.AsyncResult(ids[x]).state}, returned "
                       f"{end - stopped:+.2f} s after the stop)" for x, end in must.items()
                       if workers.client.AsyncResult(ids[x]).state != states.SUCCESS]
            raise AssertionError(f"{exc}; the server was down for {up[0] - stopped:.2f} s; "
                                 f"missing: {', '.join(missing[:20])}") from None
        wrong = [(x, got) for x in ids
                 if (got := workers.client.AsyncResult(ids[x]).result) not in (2 * x, None)]
        assert not wrong, f"results that are not the task's value: {wrong[:5]}"
        # Forgotten (no record) reads UNKNOWN where sends are tracked, else PENDING.
        failed = [x for x in ids if workers.client.AsyncResult(ids[x]).state not in
                  (states.SUCCESS, states.PENDING, states.UNKNOWN)]
        assert not failed, f"tasks recorded as not succeeded: {failed[:10]}"
        errors = [f for w in workers.processes for f in w.failures()]
        assert not errors, f"the workers logged errors: {errors[:2]}"
