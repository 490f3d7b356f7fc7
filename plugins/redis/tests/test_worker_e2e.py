"""Real ``kernel worker`` processes on Redis: a worker killed mid-run loses nothing, a task longer
than its lease runs once, delayed tasks wait in Redis (not in worker memory) and never start
early, and a worker rides out a Redis restart. Tasks live in e2e_tasks.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from kernel.app import App
from kernel.testing.processes import stop_processes
from kernel.testing.transport import wait_for
from kernel.worker.consumer import PREFETCH_CEILING
from kernel_redis.transport import DELAYED, UNACKED
from redis_servers import RedisServer

TESTS = Path(__file__).parent


@dataclass
class Cluster:
    """Worker processes and a client on one Redis database, with their own queue and keys."""

    url: str
    logs: Path
    lease: float = 30.0
    queue: str = field(default_factory=lambda: f"e2e-{uuid.uuid4().hex}")
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.keys = f"{self.queue}:book"
        self.raw = redis.Redis.from_url(self.url)
        self.app = App("e2e-client", broker=self.url, results=self.url,
                       config={"task_default_queue": self.queue})

    def start_worker(self, concurrency: int = 2, pool: str = "threads",
                     max_deliveries: int = 10) -> subprocess.Popen[bytes]:
        env = {**os.environ, "KERNEL_BROKER_URL": self.url, "KERNEL_RESULT_BACKEND": self.url,
               "E2E_QUEUE": self.queue, "E2E_LEASE": str(self.lease), "E2E_KEYS": self.keys,
               "E2E_MAX_DELIVERIES": str(max_deliveries),
               "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
        log = (self.logs / f"worker-{len(self.workers)}.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "kernel", "worker", "-A", "e2e_tasks:app", "-P", pool,
             "-c", str(concurrency), "-Q", self.queue, "-l", "warning",
             "-n", f"w{len(self.workers)}@{self.queue}"],
            env=env, stdout=log, stderr=subprocess.STDOUT)
        self.workers.append(worker)
        return worker

    def runs(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self.raw.hgetall(f"{self.keys}:runs").items()}

    def started_in(self, pid: int) -> set[str]:
        return {m.decode() for m in self.raw.smembers(f"{self.keys}:started:{pid}")}

    def held(self) -> int:
        """Messages of our queue some consumer holds (kombu's ``unacked`` hash)."""
        suffix = f',"",{json.dumps(self.queue)}]'.encode()
        return sum(1 for entry in self.raw.hvals(UNACKED) if entry.endswith(suffix))

    def state(self) -> str:
        """What the queue holds, for failure messages."""
        return (f"ran {len(self.runs())}, waiting {self.app.transport.size(self.queue)}, "
                f"held {self.held()}, workers alive "
                f"{[w.poll() is None for w in self.workers]}, logs in {self.logs}")

    def wait(self, predicate: Callable[[], object], timeout: float, what: str) -> None:
        try:
            wait_for(predicate, timeout, what, interval=0.1)
        except AssertionError as exc:
            raise AssertionError(f"{exc} ({self.state()})") from None

    def settled(self) -> bool:
        """Nothing of our queue is waiting, delayed or held any more."""
        return self.app.transport.size(self.queue) == 0 and self.held() == 0

    def wait_all_succeeded(self, ids: list[str], timeout: float) -> None:
        pending = set(ids)

        def done() -> bool:
            for task_id in list(pending):
                result = self.app.AsyncResult(task_id)
                if result.state == "FAILURE":
                    raise AssertionError(f"task {task_id} failed: {result.traceback}")
                if result.state == "SUCCESS":
                    pending.discard(task_id)
            return not pending

        self.wait(done, timeout, "every task to succeed")

    def close(self) -> None:
        stop_processes(self.workers)
        self.app.close()
        self.raw.close()


@pytest.fixture
def cluster(redis_url: str, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(redis_url, tmp_path)
    yield c
    c.close()


def send(c: Cluster, name: str, args: tuple[object, ...], n: int,
         countdown: float | None = None) -> list[str]:
    results = c.app.send_many([(name, args, {}) for _ in range(n)], queue=c.queue,
                              countdown=countdown)
    return [r.id for r in results]


@pytest.mark.timeout(180)
def test_killed_worker_loses_nothing_and_only_its_tasks_run_twice(cluster: Cluster) -> None:
    cluster.lease = 2.0  # short, yet renewals keep up on a loaded machine
    victim = cluster.start_worker()
    cluster.start_worker()
    ids = send(cluster, "e2e.work", (0.002,), 2000)
    wait_for(lambda: len(cluster.runs()) >= 500, 90, "500 tasks to have run", interval=0.05)
    victim.kill()  # SIGKILL: no shutdown, nothing given back
    victim.wait(10)
    cluster.wait_all_succeeded(ids, 120)
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
    (task_id,) = send(cluster, "e2e.work", (4.0,), 1)
    started = time.monotonic()
    cluster.wait_all_succeeded([task_id], 40)
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
        ids += send(cluster, "e2e.timed", (), 20, countdown=0.2 * (step + 1))
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
    # The prefetch adapts to short tasks, up to PREFETCH_CEILING a slot: far below the 1,000.
    ceiling = 3 * 2 * PREFETCH_CEILING
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
        ids = send(cluster, "e2e.work", (0.01,), 300)
        wait_for(lambda: len(cluster.runs()) >= 50, 60, "50 tasks to have run", interval=0.05)
        run_id = cluster.raw.info("server")["run_id"]
        server.kill()
        server.start()
        assert cluster.raw.info("server")["run_id"] != run_id, "a new server process"
        assert cluster.workers[0].poll() is None, "the worker must survive the outage"
        cluster.wait_all_succeeded(ids, 90)
        assert set(cluster.runs()) == set(ids), "every task Redis held must run"
    finally:
        cluster.close()
        server.kill()


@pytest.mark.timeout(120)
def test_a_poison_message_is_dead_lettered_after_the_delivery_cap(cluster: Cluster) -> None:
    cluster.start_worker(concurrency=1, pool="prefork", max_deliveries=3)
    [poison] = send(cluster, "e2e.crash", (), 1)
    cluster.wait(lambda: len(cluster.app.transport.dead_letters(cluster.queue)) == 1, 90,
                 "the poison message in the dead-letter queue")
    dead = cluster.app.transport.dead_letters(cluster.queue)[0]
    assert dead.envelope.headers["id"] == poison
    assert "delivered 4 times" in dead.extra["reason"]
    assert cluster.runs()[poison] == 3, "it ran once per allowed delivery, then no more"
    assert cluster.app.AsyncResult(poison).state == "REJECTED"
    [ok] = send(cluster, "e2e.work", (0,), 1)
    cluster.wait_all_succeeded([ok], 30)


@pytest.mark.timeout(120)
def test_a_killed_child_fails_a_task_that_must_not_be_redelivered(cluster: Cluster) -> None:
    from kernel import WorkerLostError

    cluster.start_worker(concurrency=1, pool="prefork")
    [lost] = send(cluster, "e2e.crash_no_redelivery", (), 1)
    with pytest.raises(WorkerLostError):
        cluster.app.AsyncResult(lost).get(timeout=60)
    assert cluster.runs()[lost] == 1
    [ok] = send(cluster, "e2e.work", (0,), 1)
    cluster.wait_all_succeeded([ok], 30)
