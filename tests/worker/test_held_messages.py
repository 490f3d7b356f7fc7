"""Each message a worker holds is settled as its own. A prefetched message starts only while it
is surely still the worker's: one whose lease ran out while it waited in the worker (the worker
was paused, or could not renew it: the broker was away) has gone to another consumer, and one
the transport says it no longer holds (its connection dropped) is the broker's again. Either is
given back, not run: running it would run the task twice. Two deliveries of one task id held at
once (a producer that sent it twice) are two jobs, each acknowledged. tests/faults shows these
with real processes (SIGSTOP past the lease, broker restarts); here the broker is the in-memory
one behind switches."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pytest

from kernel import App
from kernel.errors import ConnectionFailed
from kernel.interfaces.transport import Delivery
from kernel.plugin import TransportSpec, hookimpl
from kernel.std.memory.transport import MemoryTransport
from kernel.testing.transport import wait_for
from kernel.testing.workers import running_worker

#: while set, renewing a lease fails, as it does while the broker cannot be reached.
CUT = threading.Event()
#: deliveries `holds` answers False for, once each: the message ids.
DROPPED: set[str] = set()
FETCHED: list[tuple[str, int]] = []
ACKED: list[str] = []
#: message ids whose ack is lost, once each (the worker died between storing and acking).
ACK_LOST: set[str] = set()


class SwitchedTransport(MemoryTransport):
    """``switched://NAME``: the memory transport, its renewals failing while `CUT` is set, and
    its deliveries of the messages in `DROPPED` not held (once); what it hands out and what is
    acknowledged are recorded (`FETCHED`, `ACKED`)."""

    def __init__(self, url: str, options: Any = None) -> None:
        super().__init__(url.replace("switched://", "memory://"), options)

    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Delivery]:
        got = super().fetch(queues, limit, timeout)
        FETCHED.extend((d.envelope.headers["id"], d.delivery_count) for d in got)
        return got

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        lost = [d for d in deliveries if d.envelope.headers["id"] in ACK_LOST]
        ACK_LOST.difference_update(d.envelope.headers["id"] for d in lost)
        deliveries = [d for d in deliveries if d not in lost]
        ACKED.extend(d.envelope.headers["id"] for d in deliveries)
        super().ack(deliveries)

    def extend_lease(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        if CUT.is_set():
            raise ConnectionFailed("cannot reach the switched broker (cut by the test)")
        super().extend_lease(deliveries, seconds)

    def holds(self, delivery: Delivery) -> bool:
        task_id = delivery.envelope.headers["id"]
        if task_id in DROPPED:
            DROPPED.discard(task_id)
            return False
        return True


class Switched:
    @hookimpl
    def kernel_transports(self) -> Iterable[TransportSpec]:
        yield TransportSpec("switched", ("switched",), SwitchedTransport,
                            SwitchedTransport.capabilities)


@pytest.fixture
def app() -> Iterator[App]:
    CUT.clear()
    DROPPED.clear()
    FETCHED.clear()
    ACKED.clear()
    ACK_LOST.clear()
    name = uuid.uuid4().hex
    app = App("lapsed", broker=f"switched://{name}", results=f"memory://{name}",
              plugins=[Switched()], config={"task_default_queue": "q",
                                            "worker_lease_seconds": 0.6})
    app.runs = []  # type: ignore[attr-defined]
    app.go = threading.Event()  # type: ignore[attr-defined]
    app.again = threading.Event()  # type: ignore[attr-defined]

    @app.task(name="hold")
    def hold() -> None:
        app.runs.append("hold")  # type: ignore[attr-defined]
        app.go.wait(10)  # type: ignore[attr-defined]

    @app.task(name="count")
    def count() -> None:
        app.runs.append("count")  # type: ignore[attr-defined]

    @app.task(name="hold_again")
    def hold_again() -> None:
        app.runs.append("hold_again")  # type: ignore[attr-defined]
        app.again.wait(10)  # type: ignore[attr-defined]

    yield app
    CUT.clear()
    app.go.set()  # type: ignore[attr-defined]
    app.again.set()  # type: ignore[attr-defined]
    app.close()


def test_a_message_whose_lease_lapsed_while_it_waited_is_given_back_not_run(app: App) -> None:
    with running_worker(app, concurrency=1) as worker:
        consumer = worker.consumer
        assert consumer is not None
        app.tasks["hold"].delay()
        wait_for(lambda: app.runs == ["hold"], 10, "the first task to take the only slot")
        waiting = app.tasks["count"].delay()
        wait_for(lambda: (waiting.id, 1) in FETCHED, 10, "the second task, prefetched")
        CUT.set()
        # Unrenewed, its lease runs out; the broker hands it out again (to this worker's
        # fetcher, the only consumer), while the stale copy still waits for the slot.
        wait_for(lambda: (waiting.id, 2) in FETCHED, 10, "the message delivered again")
        CUT.clear()
        app.go.set()  # type: ignore[attr-defined]
        assert waiting.get(timeout=10) is None
        wait_for(lambda: consumer.idle, 10, "everything settled")
    assert app.runs.count("count") == 1, \
        f"the stale copy must be given back, not run: {app.runs}"  # type: ignore[attr-defined]
    assert consumer.counters.requeued >= 1


def test_a_message_the_transport_no_longer_holds_is_given_back_not_run(app: App) -> None:
    with running_worker(app, concurrency=1) as worker:
        consumer = worker.consumer
        assert consumer is not None
        task_id = uuid.uuid4().hex
        DROPPED.add(task_id)
        assert app.send_task("count", task_id=task_id).get(timeout=10) is None
        wait_for(lambda: consumer.idle, 10, "everything settled")
    assert app.runs == ["count"], app.runs  # type: ignore[attr-defined]
    assert [n for fetched, n in FETCHED if fetched == task_id] == [1, 1], \
        "given back unstarted (its delivery not counted), then fetched and run"


def test_a_message_delivered_again_after_its_task_ended_is_acknowledged_not_run(
        app: App) -> None:
    # The first delivery ran and stored its result, but its ack was lost: the lease brings
    # the message back. Its record says it ended, so it is not run a second time. (A prefork
    # worker's process relies on this too: it records the task of a child it stopped, and
    # on AMQP the broker hands that child's message out again.)
    with running_worker(app, concurrency=1) as worker:
        consumer = worker.consumer
        assert consumer is not None
        task_id = uuid.uuid4().hex
        ACK_LOST.add(task_id)
        assert app.send_task("count", task_id=task_id).get(timeout=10) is None
        wait_for(lambda: (task_id, 2) in FETCHED, 10, "the message delivered again")
        wait_for(lambda: task_id in ACKED, 10, "the second delivery acknowledged")
        wait_for(lambda: consumer.idle, 10, "everything settled")
    assert app.runs == ["count"], app.runs  # type: ignore[attr-defined]


def test_two_deliveries_of_one_task_held_at_once_are_each_run_and_acknowledged(app: App) -> None:
    app.conf.worker_lease_seconds = 30  # no redelivery to settle what the worker forgot
    with running_worker(app, concurrency=2) as worker:
        consumer = worker.consumer
        assert consumer is not None
        blockers = [app.tasks["hold"].delay() for _ in range(2)]
        wait_for(lambda: app.runs == ["hold", "hold"], 10, "two tasks to take both slots")
        task_id = uuid.uuid4().hex
        for _ in range(2):  # a client that sent it again after a send that raised, say
            app.send_task("hold_again", task_id=task_id)
        wait_for(lambda: [i for i, _ in FETCHED].count(task_id) == 2, 10,
                 "both copies prefetched, waiting together for a slot")
        app.go.set()  # type: ignore[attr-defined]
        wait_for(lambda: app.runs.count("hold_again") == 2, 10, "both copies running at once")
        app.again.set()  # type: ignore[attr-defined]
        wait_for(lambda: ACKED.count(task_id) == 2, 10, "both copies acknowledged")
        wait_for(lambda: consumer.idle, 10, "everything settled")
        assert all(b.get(timeout=1) is None for b in blockers)
    assert app.runs.count("hold_again") == 2, app.runs  # type: ignore[attr-defined]


def test_what_a_stopped_process_gave_back_is_no_longer_in_what_it_says_it_holds(
        app: App) -> None:
    # A prefork child stopped with its task (terminated, past its hard limit) gives its
    # prefetched messages back, then is killed; its parent gives back again what the child
    # last said it held. Were those still listed, the parent would release messages another
    # consumer already holds again (same tag, same count): they would run twice.
    app.conf.worker_lease_seconds = 30
    notes: list[list[str]] = []
    with running_worker(app, concurrency=1, prefetch_multiplier=4) as worker:
        consumer = worker.consumer
        assert consumer is not None
        consumer.holding = lambda held: notes.append([d.envelope.headers["id"] for d in held])
        running = app.tasks["hold"].delay()
        wait_for(lambda: app.runs == ["hold"], 10, "the first task to take the only slot")
        waiting = {app.tasks["count"].delay().id for _ in range(3)}
        wait_for(lambda: notes and waiting <= set(notes[-1]), 10, "three tasks prefetched")
        consumer.surrender()
        assert notes[-1] == [running.id], \
            f"after giving back {waiting} it must say it holds only the running task: {notes}"
        app.go.set()  # type: ignore[attr-defined]
        wait_for(lambda: consumer.idle, 10, "the running task settled")
    assert app.runs == ["hold"], app.runs  # type: ignore[attr-defined]


def test_the_worker_renews_at_the_lease_the_transport_was_given() -> None:
    # transport_options can shorten the lease below worker_lease_seconds: the worker must
    # renew at that pace (and count a message its own that long), or the lease lapses under a
    # running task and the message runs twice.
    name = uuid.uuid4().hex
    app = App("short-lease", broker=f"memory://{name}", results=f"memory://{name}",
              config={"task_default_queue": "q", "worker_lease_seconds": 30,
                      "transport_options": {"lease_seconds": 0.3}})
    runs: list[str] = []

    @app.task(name="slow")
    def slow() -> None:
        runs.append("slow")
        time.sleep(1.5)  # the task's work: five leases long

    with running_worker(app, concurrency=2) as worker:
        assert worker.consumer is not None and worker.consumer.lease_seconds == 0.3
        result = slow.delay()
        assert result.get(timeout=10) is None
    assert runs == ["slow"], "the message ran again when its lease lapsed under the task"
    app.close()
