"""Real ``kernel worker`` processes on moto's SQS, results in Redis: a task three times longer
than its lease runs once (its visibility is extended while it runs), a killed worker's messages
come back when their visibility lapses and only its tasks run twice, a poison message goes to
the dead-letter queue after ``task_max_deliveries`` and ``kernel dlq`` lists and replays it, an
ETA past the longest delay hops at the broker and runs once on time, a body that does not
decode is dead-lettered while the worker serves on, and a worker rides out an emulator
restart. Tasks live in sqs_tasks.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from kernel.testing.transport import wait_for
from kernel.testing.workers import WorkerProcess, Workers
from kernel_sqs.testing import SQSServer

TESTS = Path(__file__).parent


class Cluster(Workers):
    """Worker processes and a client on one SQS queue of their own, results and the tasks'
    bookkeeping in Redis."""

    def __init__(self, broker: str, results: str, logs: Path, lease: float = 30.0,
                 **options: Any) -> None:
        self.options = {"wait_time_seconds": 1, **options}
        super().__init__("sqs_tasks:app", broker=broker, results=results, path=TESTS,
                         logs=logs, client_config={"transport_options": self.options})
        self.lease = lease
        self.keys = f"{self.queue}:book"
        self.raw = redis.Redis.from_url(results)

    def start_worker(self, concurrency: int = 2, pool: str = "threads",
                     max_deliveries: int = 10) -> WorkerProcess:
        return self.start(pool, concurrency, env={
            "E2E_QUEUE": self.queue, "E2E_LEASE": str(self.lease), "E2E_KEYS": self.keys,
            "E2E_MAX_DELIVERIES": str(max_deliveries), "E2E_OPTIONS": json.dumps(self.options)})

    def runs(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self.raw.hgetall(f"{self.keys}:runs").items()}

    def started_in(self, pid: int) -> set[str]:
        return {m.decode() for m in self.raw.smembers(f"{self.keys}:started:{pid}")}

    def describe(self) -> str:
        return f"ran {len(self.runs())}, {super().describe()}"

    def close(self) -> None:
        super().close()
        self.raw.close()


@pytest.fixture
def cluster(sqs_url: str, redis_url: str, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(sqs_url, redis_url, tmp_path)
    yield c
    c.close()


@pytest.mark.timeout(90)
def test_a_task_three_times_longer_than_its_lease_runs_once(cluster: Cluster) -> None:
    cluster.lease = 2.0
    cluster.start_worker(concurrency=2)  # a free slot would take a message that came back
    (task_id,) = cluster.send("e2e.work", (6.5,))
    started = time.monotonic()
    cluster.wait_succeeded([task_id], 60)
    assert time.monotonic() - started >= 6.5
    assert cluster.runs() == {task_id: 1}, \
        "the worker extends the message's visibility while the task runs: it runs once"


@pytest.mark.timeout(180)
def test_a_killed_workers_messages_come_back_and_only_its_tasks_run_twice(
        cluster: Cluster) -> None:
    cluster.lease = 3.0
    victim = cluster.start_worker()
    cluster.start_worker()
    ids = cluster.send("e2e.work", (0.01,), 300)
    wait_for(lambda: len(cluster.runs()) >= 60, 90, "60 tasks to have run", interval=0.05)
    victim.kill()  # SIGKILL: nothing given back, its messages invisible until their lease ends
    cluster.wait_succeeded(ids, 120)
    runs = cluster.runs()
    assert set(runs) == set(ids), "every task must run at least once"
    twice = {i for i, n in runs.items() if n > 1}
    in_victim = cluster.started_in(victim.pid)
    assert in_victim, "the victim must have been running tasks when it was killed"
    assert twice <= in_victim, \
        f"only tasks the killed worker had started may run twice: {sorted(twice - in_victim)}"
    assert cluster.client.transport.size(cluster.queue) == 0


def kernel_cli(cluster: Cluster, *args: str) -> str:
    env = {**os.environ, "KERNEL_BROKER_URL": cluster.broker,
           "KERNEL_RESULT_BACKEND": str(cluster.results), "PYTHONPATH": str(TESTS),
           "E2E_QUEUE": cluster.queue, "E2E_OPTIONS": json.dumps(cluster.options),
           "COLUMNS": "400"}
    done = subprocess.run([sys.executable, "-m", "kernel", *args, "-A", "sqs_tasks:app"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.timeout(150)
def test_a_poison_message_is_dead_lettered_and_kernel_dlq_works(cluster: Cluster) -> None:
    cluster.lease = 2.0
    cluster.start_worker(concurrency=1, pool="prefork", max_deliveries=2)
    [poison] = cluster.send("e2e.crash")
    transport = cluster.client.transport
    cluster.wait(lambda: len(transport.dead_letters(cluster.queue)) == 1, 100,
                 "the poison message in the dead-letter queue")
    dead = transport.dead_letters(cluster.queue)[0]
    assert dead.envelope.headers["id"] == poison
    assert "delivered 3 times" in dead.extra["reason"], dead.extra
    assert cluster.runs()[poison] == 2, "it ran once per allowed delivery, then no more"
    [ok] = cluster.send("e2e.work", (0,))
    cluster.wait_succeeded([ok], 30)
    listing = kernel_cli(cluster, "dlq", "list", "-Q", cluster.queue)
    assert poison in listing and "delivered 3 times" in listing, listing
    cluster.processes[0].stop()
    replayed = kernel_cli(cluster, "dlq", "replay", "-Q", cluster.queue)
    assert "1 message replayed" in replayed, replayed
    assert transport.dead_letters(cluster.queue) == []
    assert transport.size(cluster.queue) == 1, "back in its queue"


@pytest.mark.timeout(90)
def test_an_eta_past_the_longest_delay_hops_at_the_broker(sqs_url: str, redis_url: str,
                                                          tmp_path: Path) -> None:
    with Cluster(sqs_url, redis_url, tmp_path, lease=5.0, max_delay_seconds=1) as cluster:
        cluster.start_worker()
        ids = cluster.send("e2e.timed", (), 5, countdown=4)
        assert cluster.client.transport.size(cluster.queue) == 5, "delayed at the broker"
        cluster.wait(lambda: len(cluster.runs()) == 5, 40, "the delayed tasks to run")
        assert set(cluster.runs().values()) == {1}, "each runs once"
        late = {k.decode(): float(v)
                for k, v in cluster.raw.hgetall(f"{cluster.keys}:late").items()}
        assert set(late) == set(ids)
        assert all(0 <= v < 1.5 for v in late.values()), \
            f"never early, on time after the last hop (seconds late): {late}"


@pytest.mark.timeout(90)
def test_an_undecodable_body_is_dead_lettered_and_the_worker_serves_on(
        cluster: Cluster) -> None:
    cluster.start_worker()
    [first] = cluster.send("e2e.work", (0,))
    cluster.wait_succeeded([first], 30)
    connection = cluster.client.transport.connection  # type: ignore[attr-defined]
    connection.client().send_message(QueueUrl=connection.url(cluster.queue),
                                     MessageBody="%% not a message %%")
    [after] = cluster.send("e2e.work", (0,))
    cluster.wait_succeeded([after], 30)
    dead = cluster.wait(lambda: cluster.client.transport.dead_letters(cluster.queue), 30,
                        "the undecodable body in the dead-letter queue")
    assert "not a JSON envelope" in dead[0].extra["reason"]
    assert cluster.processes[0].running


@pytest.mark.timeout(150)
def test_a_worker_rides_out_an_emulator_restart(redis_url: str, tmp_path: Path) -> None:
    """moto keeps nothing across a restart, so what was waiting then is gone with it (SQS
    itself does not restart); the worker must live on and serve what is sent after."""
    with SQSServer(tmp_path / "moto") as server, \
            Cluster(server.url, redis_url, tmp_path, lease=5.0) as cluster:
        worker = cluster.start_worker()
        before = cluster.send("e2e.work", (0.01,), 50)
        cluster.wait_succeeded(before, 60)
        server.restart()
        after = cluster.send("e2e.work", (0.01,), 50)
        cluster.wait_succeeded(after, 90)
        assert worker.running, "the worker must survive the restart"
        assert set(cluster.runs()) == set(before + after)
