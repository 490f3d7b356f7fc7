"""Real ``kernel worker`` processes on Redis: a worker killed mid-run loses nothing, a task longer
than its lease runs once, delayed tasks wait in Redis (not in worker memory) and never start
early, and a worker rides out a Redis restart. Tasks live in e2e_tasks.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from kernel.testing.transport import wait_for
from kernel.testing.workers import WorkerProcess, Workers
from kernel_redis.transport import DELAYED
from kernel_redis.testing import RedisServer, held

TESTS = Path(__file__).parent


class Cluster(Workers):
    """Worker processes and a client on one Redis database, with their own queue and the keys
    e2e_tasks.py books runs under."""

    def __init__(self, url: str, logs: Path, lease: float = 30.0) -> None:
        super().__init__("e2e_tasks:app", broker=url, results=url, path=TESTS, logs=logs)
        self.lease = lease
        self.keys = f"{self.queue}:book"
        self.raw = redis.Redis.from_url(url)

    def start_worker(self, concurrency: int = 2, pool: str = "threads",
                     max_deliveries: int = 10) -> WorkerProcess:
        return self.start(pool, concurrency, env={
            "E2E_QUEUE": self.queue, "E2E_LEASE": str(self.lease), "E2E_KEYS": self.keys,
            "E2E_MAX_DELIVERIES": str(max_deliveries)})

    def runs(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self.raw.hgetall(f"{self.keys}:runs").items()}

    def started_in(self, pid: int) -> set[str]:
        return {m.decode() for m in self.raw.smembers(f"{self.keys}:started:{pid}")}

    def held(self) -> int:
        """Messages of our queue some consumer holds (kombu's ``unacked`` hash)."""
        return held(self.raw, self.queue)

    def describe(self) -> str:
        return (f"ran {len(self.runs())}, waiting {self.client.transport.size(self.queue)}, "
                f"held {self.held()}, {super().describe()}")

    def settled(self) -> bool:
        """Nothing of our queue is waiting, delayed or held any more."""
        return self.client.transport.size(self.queue) == 0 and self.held() == 0

    def close(self) -> None:
        super().close()
        self.raw.close()


@pytest.fixture
def cluster(redis_url: str, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(redis_url, tmp_path)
    yield c
    c.close()


@pytest.mark.timeout(180)
def test_killed_worker_loses_nothing_and_only_its_tasks_run_twice(cluster: Cluster) -> None:
    cluster.lease = 2.0  # short, yet renewals keep up on a loaded machine
    victim = cluster.start_worker()
    cluster.start_worker()
    ids = cluster.send("e2e.work", (0.002,), 2000)
    wait_for(lambda: len(cluster.runs()) >= 500, 90, "500 tasks to have run", interval=0.05)
    victim.kill()  # SIGKILL: no shutdown, nothing given back
    cluster.wait_succeeded(ids, 120)
    cluster.wait(cluster.settled, 30, "the queue to be empty and nothing held")
    runs = cluster.runs()
    assert set(runs) == set(ids), "every task must run at least once"
    twice = {i for i, n in runs.items() if n > 1}
    in_victim = cluster.started_in(victim.pid)
    assert in_victim, "the victim must have been running tasks when it was killed"
    assert twice <= in_victim, \
        f"only tasks the killed worker had started may run twice: {sorted(twice - in_victim)}"
    assert max(runs.values()) <= 2, "a task the kill interrupted runs again once, not more"


@pytest.mark.timeout(60)
def test_task_longer_than_its_lease_runs_once(cluster: Cluster) -> None:
    cluster.lease = 1.0
    cluster.start_worker(concurrency=2)  # a free slot would take a restored message at once
    (task_id,) = cluster.send("e2e.work", (4.0,))
    started = time.monotonic()
    cluster.wait_succeeded([task_id], 40)
    assert time.monotonic() - started >= 4.0
    assert cluster.runs() == {task_id: 1}, \
        "the worker renews the lease every third of it; the task must not be delivered again"


@pytest.mark.timeout(150)
def test_delayed_tasks_wait_in_redis_and_never_start_early(cluster: Cluster) -> None:
    cluster.lease = 5.0
    for _ in range(3):
        cluster.start_worker()
    ids: list[str] = []
    for step in range(50):  # 1,000 tasks, countdowns 0.2 s .. 10 s
        ids += cluster.send("e2e.timed", (), 20, countdown=0.2 * (step + 1))
    delayed_key = DELAYED + cluster.queue
    most_delayed, most_held = 0, 0

    def all_ran() -> bool:
        nonlocal most_delayed, most_held
        most_delayed = max(most_delayed, int(cluster.raw.zcard(delayed_key)))
        most_held = max(most_held, cluster.held())
        return len(cluster.runs()) == len(ids)

    cluster.wait(all_ran, 90, "every delayed task to run")
    cluster.wait(cluster.settled, 30, "the queue to be empty and nothing held")
    assert most_delayed >= 900, "waiting messages must sit in the broker's delayed ZSET"
    # The prefetch adapts to short tasks, up to 32 messages a slot (worker_prefetch_budget):
    # far below the 1,000.
    ceiling = 3 * 2 * 32
    assert most_held <= ceiling, \
        f"workers may hold only their prefetch ({ceiling}), never the waiting tasks: {most_held}"
    runs = cluster.runs()
    assert set(runs) == set(ids) and set(runs.values()) == {1}, "each delayed task runs once"
    late = {k.decode(): float(v) for k, v in cluster.raw.hgetall(f"{cluster.keys}:late").items()}
    early = {i: v for i, v in late.items() if v < -0.001}
    assert not early, f"tasks started before their ETA (seconds late): {early}"


@pytest.mark.timeout(120)
def test_worker_reconnects_after_a_redis_restart(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", persist=True).start()
    cluster = Cluster(server.url, tmp_path, lease=5.0)
    try:
        cluster.start_worker()
        ids = cluster.send("e2e.work", (0.01,), 300)
        wait_for(lambda: len(cluster.runs()) >= 50, 60, "50 tasks to have run", interval=0.05)
        run_id = cluster.raw.info("server")["run_id"]
        server.kill()
        server.start()
        assert cluster.raw.info("server")["run_id"] != run_id, "a new server process"
        assert cluster.processes[0].running, "the worker must survive the outage"
        cluster.wait_succeeded(ids, 90)
        assert set(cluster.runs()) == set(ids), "every task Redis held must run"
    finally:
        cluster.close()
        server.kill()


@pytest.mark.timeout(120)
def test_a_poison_message_is_dead_lettered_after_the_delivery_cap(cluster: Cluster) -> None:
    cluster.start_worker(concurrency=1, pool="prefork", max_deliveries=3)
    [poison] = cluster.send("e2e.crash")
    cluster.wait(lambda: len(cluster.client.transport.dead_letters(cluster.queue)) == 1, 90,
                 "the poison message in the dead-letter queue")
    dead = cluster.client.transport.dead_letters(cluster.queue)[0]
    assert dead.envelope.headers["id"] == poison
    assert "delivered 4 times" in dead.extra["reason"]
    assert cluster.runs()[poison] == 3, "it ran once per allowed delivery, then no more"
    assert cluster.client.AsyncResult(poison).state == "REJECTED"
    [ok] = cluster.send("e2e.work", (0,))
    cluster.wait_succeeded([ok], 30)


@pytest.mark.timeout(120)
def test_a_killed_child_fails_a_task_that_must_not_be_redelivered(cluster: Cluster) -> None:
    from kernel import WorkerLostError

    cluster.start_worker(concurrency=1, pool="prefork")
    [lost] = cluster.send("e2e.crash_no_redelivery")
    with pytest.raises(WorkerLostError):
        cluster.client.AsyncResult(lost).get(timeout=60)
    assert cluster.runs()[lost] == 1
    [ok] = cluster.send("e2e.work", (0,))
    cluster.wait_succeeded([ok], 30)
