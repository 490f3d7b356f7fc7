"""Real ``kernel worker`` processes on RabbitMQ: a worker rides out a RabbitMQ restart and
finishes every persisted task; delayed tasks longer than ``consumer_timeout`` run once, on time,
without RabbitMQ closing the channel; a message that kills its worker every time is stopped by
the delivery cap and dead-lettered. Tasks live in amqp_tasks.py.

The restart and ``consumer_timeout`` tests run against a private RabbitMQ node (`private_node`),
never the shared one, so they may run beside any other test."""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kernel import App
from kernel.plugin import ConnectionFailed
from kernel.interfaces.transport import Outgoing
from kernel.testing.transport import make_envelope, wait_for
from kernel.testing.workers import Workers
from kernel.testing.workers import running_worker
from kernel_amqp.transport import AmqpTransport
from kernel_amqp.testing import RabbitNode

TESTS = Path(__file__).parent


class Cluster(Workers):
    """Worker processes and a client on one broker, with a queue of their own; amqp_tasks.py
    books each run in a file (``<logs>/book``), which outlives broker restarts."""

    def __init__(self, url: str, logs: Path, *, max_deliveries: int = 10,
                 queue_type: str = "classic", results: str | None = None,
                 queue: str | None = None) -> None:
        queue = queue or f"e2e-{uuid.uuid4().hex[:12]}"
        self.book = logs / "book"
        super().__init__(
            "amqp_tasks:app", broker=url, results=results, path=TESTS, logs=logs, queue=queue,
            client_config={"transport_options": {"queue_type": queue_type}},
            env={"E2E_QUEUE": queue, "E2E_BOOK": str(self.book),
                 "E2E_MAX_DELIVERIES": str(max_deliveries), "E2E_QUEUE_TYPE": queue_type,
                 "E2E_RESULTS": results or ""})

    def log(self, n: int) -> str:
        return self.processes[n].output()

    def runs(self) -> Counter[str]:
        if not self.book.exists():
            return Counter()
        return Counter(line.split()[0] for line in self.book.read_text().splitlines())

    def describe(self) -> str:
        return f"ran {len(self.runs())}, {super().describe()}"


@pytest.fixture
def workers(url: str, tmp_path: Path,
            new_queue: Callable[[str], str]) -> Iterator[Callable[..., Cluster]]:
    """Makes a `Cluster` on the shared RabbitMQ: ``workers(max_deliveries=3)``."""
    made: list[Cluster] = []

    def make(**options: Any) -> Cluster:
        made.append(Cluster(url, tmp_path, queue=new_queue("e2e"), **options))
        return made[-1]

    yield make
    for w in made:
        w.close()


# ---------------------------------------------------------------------------- restart


@pytest.mark.timeout(300)
def test_worker_rides_out_a_rabbitmq_restart(private_node: RabbitNode, tmp_path: Path) -> None:
    w = Cluster(private_node.url, tmp_path)
    try:
        worker = w.start()
        before = w.send("e2e.work", (0.02,), 200)
        w.wait(lambda: len(w.runs()) >= 30, 60, "30 tasks to have run")
        try:
            private_node.ctl("stop_app")
            w.wait(lambda: "cannot fetch from the broker" in w.log(0), 60,
                   "the worker to find RabbitMQ gone")
        finally:
            # Whatever happened, the node runs again for the tests after this one.
            private_node.ctl("start_app")
            private_node.wait_until_up(60)
        assert worker.running, "the worker must outlive the outage"
        # The client's own connection died too: its next publish reconnects by itself.
        after = w.send("e2e.work", (0.0,), 20)
        w.wait(lambda: set(before + after) <= set(w.runs()), 120,
               "every task to run: the 200 persisted before the restart and 20 sent after")
        w.wait(lambda: w.client.transport.size(w.queue) == 0, 30, "the queue to be empty")
        runs = w.runs()
        assert max(runs.values()) <= 2, "only tasks running at the restart may run again"
        assert worker.running
    finally:
        w.close()


# ---------------------------------------------------------------------------- consumer_timeout


def test_consumer_timeout_is_in_force_on_the_private_node(
        private_node: RabbitNode, caplog: pytest.LogCaptureFixture) -> None:
    """The control for the next test: on this node a delivery held past 2 s costs the
    channel, as it would a worker that keeps an ETA task in memory."""
    queue = f"held-{uuid.uuid4().hex[:12]}"
    holder = AmqpTransport(private_node.url, {})
    try:
        holder.publish([Outgoing(queue, make_envelope(1))])
        assert wait_for(lambda: holder.fetch([queue], 1, 0.2), 10, "the message")
        assert holder._link is not None
        generation = holder._link.generation

        def channel_closed() -> str:
            # The close shows as an error of this call, or (found before the call relied on
            # the connection) as a warning and a new connection.
            try:
                holder.fetch([queue + "-other"], 1, 0.2)
            except ConnectionFailed as exc:
                return str(exc)
            assert holder._link is not None
            return caplog.text if holder._link.generation != generation else ""

        with caplog.at_level(logging.WARNING, logger="kernel_amqp"):
            reason = wait_for(channel_closed, 20, "RabbitMQ to close the channel holding the "
                                                  "delivery past consumer_timeout", interval=0)
        assert "acknowledgement" in reason and "timed out" in reason, reason
    finally:
        holder.close()


@pytest.mark.timeout(120)
def test_eta_tasks_longer_than_consumer_timeout_run_once_on_time(
        private_node: RabbitNode, celery: Any) -> None:
    queue = f"eta-{uuid.uuid4().hex[:12]}"
    app = App("eta", broker=private_node.url, config={"task_default_queue": queue,
                                                      "result_backend": None})
    ran: list[tuple[str, float]] = []

    @app.task(name="e2e.timed", bind=True)
    def timed(self: Any) -> None:
        ran.append((self.request.id, time.time() - self.request.eta))

    client = celery.Celery("eta-client", broker=private_node.url)
    client.conf.task_queue_max_priority = 10
    transport = app.transport
    assert isinstance(transport, AmqpTransport)
    try:
        with running_worker(app, concurrency=2, queues=[queue]):
            generation = wait_for(lambda: transport._link, 10, "the worker to connect").generation
            # 5 s and 4 s: longer than the 2 s consumer_timeout. Celery's countdown arrives at once
            # with an ETA header (the worker hands it to the broker's delay queues); kernel's waits
            # in the delay queues from the start.
            ids = [r.id for r in app.send_many([("e2e.timed", (), {})] * 3, countdown=5)]
            ids += [client.send_task("e2e.timed", queue=queue, countdown=4).id for _ in range(2)]
            wait_for(lambda: len(ran) >= len(ids), 30, "every delayed task to run", interval=0.1)
            runs = Counter(task_id for task_id, _ in ran)
            assert set(runs) == set(ids) and set(runs.values()) == {1}, "each runs once"
            late = [lateness for _, lateness in ran]
            assert min(late) >= 0, f"a task ran before its ETA: {late}"
            assert max(late) < 3, f"a task ran more than 3 s late: {late}"
            assert transport._link is not None and transport._link.generation == generation, \
                "the worker reconnected: RabbitMQ closed a channel (consumer_timeout)"
    finally:
        client.close()
        app.close()


# ---------------------------------------------------------------------------- poison messages


def test_a_task_that_kills_its_prefork_child_is_dead_lettered_after_the_cap(
        workers: Callable[..., Cluster]) -> None:
    w = workers(max_deliveries=3)
    worker = w.start(pool="prefork", concurrency=1)
    (poison,) = w.send("e2e.crash", (), 1)
    w.wait(lambda: w.client.transport.dead_letters(w.queue), 90,
           "the poison message to reach the dead-letter queue")
    (dead,) = w.client.transport.dead_letters(w.queue)
    assert dead.envelope.headers["id"] == poison
    assert "cap task_max_deliveries=3" in dead.extra["reason"]
    assert w.runs() == {poison: 3}, "it runs at most task_max_deliveries times"
    w.wait(lambda: "task_max_deliveries=3" in w.log(0), 10, "the log line")
    assert f"rejected message from queue {w.queue!r}: delivered 4 times" in w.log(0)
    (fine,) = w.send("e2e.work", (0.0,), 1)
    w.wait(lambda: fine in w.runs(), 30, "the worker to go on with other tasks")
    assert worker.running


@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
def test_a_task_that_kills_the_whole_worker_is_dead_lettered_after_the_cap(
        workers: Callable[..., Cluster], queue_type: str) -> None:
    """Under the solo pool the task kills the worker itself, so RabbitMQ redelivers when the
    connection drops: a classic queue only flags that (the transport counts it), a quorum
    queue counts it (x-delivery-count)."""
    w = workers(max_deliveries=2, queue_type=queue_type)
    (poison,) = w.send("e2e.crash", (), 1)
    for n in range(2):
        worker = w.start(pool="solo", concurrency=1)
        assert worker.wait(60) != 0, f"worker {n} should have been killed by the task"
    survivor = w.start(pool="solo", concurrency=1)
    w.wait(lambda: w.client.transport.dead_letters(w.queue), 60,
           "the poison message to reach the dead-letter queue")
    assert w.runs() == {poison: 2}, "it runs at most task_max_deliveries times"
    w.wait(lambda: "task_max_deliveries=2" in w.log(2), 10, "the log line")
    assert survivor.running, "the worker that met it after the cap must live"


# ---------------------------------------------------------------------------- heartbeats


@pytest.mark.timeout(60)
def test_a_long_task_does_not_cost_the_worker_its_connection(
        url: str, new_queue: Callable[[str], str]) -> None:
    """With 1 s heartbeats RabbitMQ drops a connection silent for about 2 s; a worker whose one
    slot runs a 4 s task does not fetch meanwhile, its heartbeat thread keeps it connected."""
    queue = new_queue("long")
    app = App("long", broker=url, config={"task_default_queue": queue, "result_backend": None,
                                          "transport_options": {"heartbeat": 1}})
    ran: list[str] = []

    @app.task(name="e2e.long", bind=True)
    def long(self: Any) -> None:
        time.sleep(4)
        ran.append(self.request.id)

    transport = app.transport
    assert isinstance(transport, AmqpTransport)
    try:
        with running_worker(app, concurrency=1, prefetch_multiplier=1, queues=[queue]):
            task_id = app.send_task("e2e.long").id
            generation = wait_for(lambda: transport._link, 10, "the worker to connect").generation
            wait_for(lambda: ran, 30, "the long task to finish", interval=0.1)
            wait_for(lambda: transport.size(queue) == 0, 10, "the queue to be empty")
            assert ran == [task_id], "the task ran again: its connection was dropped"
            assert transport._link is not None and transport._link.generation == generation, \
                "the worker lost its connection while the task ran"
    finally:
        app.close()


# ---------------------------------------------------------------------------- rpc


@pytest.mark.timeout(90)
def test_a_kernel_client_gets_results_from_a_prefork_worker_over_rpc(
        workers: Callable[..., Cluster]) -> None:
    """The results are written in the pool's child processes, each with a connection of its
    own, and reach the client's reply queue."""
    w = workers(results="rpc://")
    w.start(pool="prefork", concurrency=2)
    results = w.client.send_many([("e2e.add", (n, n), {}) for n in range(20)])
    assert [r.get(timeout=60) for r in results] == [2 * n for n in range(20)]
