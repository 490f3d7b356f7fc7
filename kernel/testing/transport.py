"""Conformance suite for transports (`kernel.interfaces.transport.Transport`).

Subclass it in your plugin's tests and give it fixtures::

    from kernel.testing import TransportSuite

    class TestMyTransport(TransportSuite):
        @pytest.fixture
        def transport(self):                 # a fresh connection
            t = MyTransport(URL, {})
            yield t
            t.close()

        @pytest.fixture
        def other_transport(self):           # a second connection to the same broker
            t = MyTransport(URL, {})
            yield t
            t.close()

        @pytest.fixture
        def short_lease_transport(self):     # same broker, leases of `self.lease_seconds`
            t = MyTransport(URL, {"lease_seconds": self.lease_seconds})
            yield t
            t.close()

Tests use a fresh queue name each (the `queue` fixture), so one broker serves them all, also
under pytest-xdist. Optional features are tested according to the capabilities the transport
declares: a declared capability must work, an undeclared one must be refused honestly (an error,
not a silent emulation). No test is skipped for a missing capability, except those needing
`other_transport` when the transport says it cannot be shared between connections.
``other_transport`` is required when ``capabilities.multi_process``; ``short_lease_transport``
when ``capabilities.leases``. Every failure message ends with what to check.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import pytest

from kernel.errors import MissingCapability
from kernel.interfaces.transport import Delivery, Outgoing, Transport
from kernel.message import Envelope

__all__ = ["TransportSuite", "at_once", "make_envelope", "wait_for", "wake_latency"]

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 5.0, message: str = "condition",
             interval: float = 0.01) -> T:
    """Call `predicate` until it returns something truthy and return that, or fail the test
    after `timeout` seconds saying `message`. For tests: the condition, not a sleep, decides."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for: {message}")
        time.sleep(interval)


def at_once(work: Callable[[int], T], n: int, timeout: float = 60.0) -> list[T]:
    """``[work(0), ..., work(n - 1)]``, each on its own thread, all released at the same moment.
    Re-raises the first exception a thread raised; fails the test if one outlives `timeout`."""
    start = threading.Barrier(n)
    results: dict[int, T] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            start.wait(10)
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    if errors:
        raise errors[0]
    assert len(results) == n, f"{n - len(results)} of {n} threads still ran after {timeout}s"
    return [results[i] for i in range(n)]


def wake_latency(wait: Callable[[], T], write: Callable[[], object],
                 delay: float = 0.3) -> tuple[T, float]:
    """Block in `wait()` while another thread calls `write()` after `delay` seconds; returns
    what `wait` returned and how many seconds after the write it returned."""
    written: list[float] = []

    def timed_write() -> None:
        written.append(time.monotonic())
        write()

    timer = threading.Timer(delay, timed_write)
    timer.start()
    try:
        got = wait()
        returned = time.monotonic()
    finally:
        timer.join()
    return got, returned - written[0]


def make_envelope(n: int, **headers: Any) -> Envelope:
    """A small task-like envelope whose ``id`` header is ``m-<n>``."""
    return Envelope(
        body=b'[[%d], {}, {"callbacks": null}]' % n,
        headers={"lang": "py", "task": "suite.task", "id": f"m-{n}", **headers},
        properties={"correlation_id": f"m-{n}", "reply_to": "suite-reply"},
    )


def _ids(deliveries: Sequence[Delivery]) -> list[str]:
    return [d.envelope.headers.get("id", "?") for d in deliveries]


def _drain(transport: Transport, queues: Sequence[str], count: int,
           timeout: float = 5.0) -> list[Delivery]:
    """Fetch until `count` messages arrived or `timeout` passed."""
    got: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        got += transport.fetch(queues, count - len(got), min(left, 1.0))
    return got


def _race(consumers: Sequence[Transport], queue: str, count: int) -> list[str]:
    """Consumers fetch from `queue` at the same time, acking as they go, until it is empty;
    returns every message id any of them received."""

    def consume(i: int) -> list[str]:
        received: list[str] = []
        while batch := consumers[i].fetch([queue], 7, 0.5):
            received += _ids(batch)
            consumers[i].ack(batch)
        return received

    return [mid for received in at_once(consume, len(consumers)) for mid in received]


def _busy_share(seconds: float) -> float:
    """The share of a core a busy loop gets over `seconds` of wall time, now (1.0: all of one)."""
    cpu, end = time.process_time(), time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return (time.process_time() - cpu) / seconds


class TransportSuite:
    """The guarantees of `kernel.interfaces.transport.Transport`, one test each."""

    #: how long `short_lease_transport` leases a message; lease tests wait a few of these.
    lease_seconds: float = 1.0

    # ------------------------------------------------------------------ fixtures

    @pytest.fixture
    def transport(self) -> Iterator[Transport]:
        pytest.fail("override the `transport` fixture to return a fresh instance of your "
                    "transport (and close it afterwards)")
        yield  # pragma: no cover

    @pytest.fixture
    def other_transport(self, transport: Transport) -> Iterator[Transport]:
        if not transport.capabilities.multi_process:
            pytest.skip("the transport cannot be shared between connections "
                        "(capabilities.multi_process is False) and gives no `other_transport`")
        pytest.fail("override the `other_transport` fixture to return a second connection to "
                    "the broker `transport` uses: capabilities.multi_process is declared")
        yield  # pragma: no cover

    @pytest.fixture
    def short_lease_transport(self, transport: Transport) -> Iterator[Transport]:
        if not transport.capabilities.leases:
            yield transport  # unused: lease tests take the other branch
            return
        pytest.fail("override the `short_lease_transport` fixture to return a connection to "
                    "the same broker whose leases last `self.lease_seconds`: "
                    "capabilities.leases is declared")
        yield  # pragma: no cover

    @pytest.fixture
    def queue(self) -> str:
        return f"q-{uuid.uuid4().hex}"

    # ------------------------------------------------------------------ basics

    def test_round_trip_preserves_envelope(self, transport: Transport, queue: str) -> None:
        sent = Envelope(
            body=b"\x00\xffbinary \xe2\x82\xac body",
            headers={"lang": "py", "task": "suite.t", "id": "rt-1", "retries": 2,
                     "timelimit": [None, 1.5], "argsrepr": "('żółw', '日本')",
                     "nested": {"a": [1, {"b": None}], "ok": True}},
            properties={"correlation_id": "rt-1", "reply_to": "r.q", "priority": 3,
                        "custom": {"x": [1, 2]}},
            content_type="application/x-suite",
            content_encoding="binary",
        )
        transport.publish([Outgoing(queue, sent)])
        got = _drain(transport, [queue], 1)
        assert len(got) == 1, "a published message was not fetched; check that publish " \
            "writes to the queue named in Outgoing.queue and fetch reads it"
        env = got[0].envelope
        assert env.body == sent.body, "body bytes changed on the way; check the body is " \
            "stored as bytes (base64 in a JSON envelope), not decoded as text"
        assert env.headers == sent.headers, "headers changed on the way; check the whole " \
            "headers mapping is stored and read back (nested values, unicode, None)"
        assert (env.content_type, env.content_encoding) == (
            sent.content_type, sent.content_encoding), \
            "content type/encoding changed; check both are stored with the message"
        for name, value in sent.properties.items():
            assert env.properties.get(name) == value, f"property {name!r} was lost or " \
                "changed; transports may add properties but must keep the producer's"
        assert got[0].queue == queue, "Delivery.queue must name the queue fetched from"
        assert got[0].delivery_count == 1 and not got[0].redelivered, \
            "a first delivery must have delivery_count 1; check the count starts at 0 " \
            "and each fetch adds one"

    def test_fifo_within_a_priority(self, transport: Transport, queue: str) -> None:
        for n in range(20):
            transport.publish([Outgoing(queue, make_envelope(n))])
        got = _drain(transport, [queue], 20)
        assert _ids(got) == [f"m-{n}" for n in range(20)], "messages of one queue and one " \
            "priority must come out in the order they went in; check fetch orders by arrival"

    def test_batch_publish(self, transport: Transport, queue: str) -> None:
        transport.publish([Outgoing(queue, make_envelope(n)) for n in range(100)])
        got = _drain(transport, [queue], 100)
        assert _ids(got) == [f"m-{n}" for n in range(100)], "a batch must arrive whole and " \
            "in order; check publish writes every message of the batch, in batch order"

    def test_publish_empty_batch_is_a_no_op(self, transport: Transport, queue: str) -> None:
        transport.publish([])
        assert transport.fetch([queue], 1, 0) == [], \
            "publishing an empty batch must deliver nothing"

    def test_fetch_respects_limit(self, transport: Transport, queue: str) -> None:
        """Up to `limit`, as the interface says: a transport the broker pushes to (RabbitMQ)
        may return what has arrived so far rather than wait for the rest."""
        transport.publish([Outgoing(queue, make_envelope(n)) for n in range(5)])
        first = _drain(transport, [queue], 2)
        assert len(first) == 2, "fetch(limit=2) must return 2 of 5 waiting messages"
        more = transport.fetch([queue], 2, 5)
        assert 1 <= len(more) <= 2, "fetch must return a waiting message and never more " \
            "than `limit` messages; check the claim query's LIMIT"
        rest = _drain(transport, [queue], 5 - len(first) - len(more))
        assert sorted(_ids(first + more + rest)) == sorted(f"m-{n}" for n in range(5)), \
            "the messages a limited fetch left behind must still be delivered"

    def test_fetch_waits_for_the_timeout(self, transport: Transport, queue: str) -> None:
        start = time.monotonic()
        got = transport.fetch([queue], 1, 0.5)
        elapsed = time.monotonic() - start
        assert got == [], "fetch on an empty queue must return []"
        assert elapsed >= 0.4, f"fetch returned empty-handed after {elapsed:.3f}s of a 0.5s " \
            "timeout; check fetch blocks until the timeout instead of returning early"
        assert elapsed < 2.5, f"fetch took {elapsed:.3f}s for a 0.5s timeout; check the " \
            "wait is bounded by the timeout"

    def test_fetch_does_not_spin(self, transport: Transport, queue: str) -> None:
        # Against what a busy loop gets here just before: on a loaded machine a spinning fetch
        # gets a fraction of a core, as the loop does, and must still be caught.
        share = _busy_share(0.25)
        cpu, wall = time.process_time(), time.monotonic()
        transport.fetch([queue], 1, 0.5)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        # A spinner gets about `share` of the wall time; half of that leaves room for clients
        # whose idle long poll itself costs CPU (boto3 signing an SQS request).
        assert cpu < 0.5 * share * wall, (
            f"an idle fetch used {cpu:.3f}s of CPU in {wall:.3f}s, where a busy loop got "
            f"{share:.0%} of a core; check fetch sleeps (condition, blocking read, backoff) "
            f"instead of busy-polling")

    def test_fetch_wakes_when_a_message_arrives(self, transport: Transport,
                                                queue: str) -> None:
        got, latency = wake_latency(lambda: transport.fetch([queue], 1, 10),
                                    lambda: transport.publish([Outgoing(queue, make_envelope(1))]))
        assert _ids(got) == ["m-1"], "a blocked fetch must return the message published " \
            "while it waited"
        assert latency < 0.5, f"a blocked fetch took {latency:.3f}s to see a new message; " \
            "check that publishing wakes waiting consumers (or that the poll interval is short)"

    def test_no_double_delivery_between_threads(self, transport: Transport,
                                                queue: str) -> None:
        transport.publish([Outgoing(queue, make_envelope(n)) for n in range(300)])
        received = _race([transport, transport], queue, 300)
        assert len(received) == len(set(received)), "a message went to two consumers at " \
            "once; check that claiming a message is atomic (one transaction, or a pop)"
        assert sorted(received) == sorted(f"m-{n}" for n in range(300)), \
            "messages were lost while two threads consumed; check fetch under concurrency"

    def test_no_double_delivery_between_connections(
            self, transport: Transport, other_transport: Transport, queue: str) -> None:
        transport.publish([Outgoing(queue, make_envelope(n)) for n in range(300)])
        received = _race([transport, other_transport], queue, 300)
        assert len(received) == len(set(received)), "two connections received the same " \
            "message; check that a claim by one connection hides the message from all others"
        assert sorted(received) == sorted(f"m-{n}" for n in range(300)), \
            "messages were lost while two connections consumed"

    def test_queue_preference(self, transport: Transport, queue: str) -> None:
        low, high = queue + "-low", queue + "-high"
        transport.publish([Outgoing(low, make_envelope(n)) for n in range(2)])
        transport.publish([Outgoing(high, make_envelope(n)) for n in range(2, 4)])
        got = transport.fetch([high, low], 3, 5)
        assert _ids(got) == ["m-2", "m-3", "m-0"], "fetch must take from the queues in the " \
            "order given (all of the first before the second); check the claim loops over " \
            "queues in order"
        rest = _drain(transport, [high, low], 1)
        assert _ids(rest) == ["m-1"] and rest[0].queue == low, \
            "Delivery.queue must name the queue the message came from"

    # ------------------------------------------------------------------ settling

    def test_ack_removes(self, transport: Transport, short_lease_transport: Transport,
                         queue: str) -> None:
        holder = short_lease_transport
        transport.publish([Outgoing(queue, make_envelope(1))])
        got = _drain(holder, [queue], 1)
        holder.ack(got)
        # Past the lease too: an acked message must not come back when its lease would end.
        wait = self.lease_seconds * 2 if transport.capabilities.leases else 0.3
        again = transport.fetch([queue], 1, wait)
        assert again == [], "an acked message was delivered again; check ack deletes it " \
            "(and that an ended lease cannot bring it back)"
        holder.ack(got)  # acking twice is a no-op

    def test_reject_requeue_redelivers(self, transport: Transport, queue: str) -> None:
        transport.publish([Outgoing(queue, make_envelope(1))])
        first = _drain(transport, [queue], 1)
        transport.reject(first[0], requeue=True, reason="try again")
        again = _drain(transport, [queue], 1)
        assert _ids(again) == ["m-1"], "reject(requeue=True) must make the message " \
            "deliverable again at once"
        assert again[0].delivery_count == 2 and again[0].redelivered, \
            f"a redelivery must have delivery_count 2 (got {again[0].delivery_count}); " \
            "check fetch increments the stored count"
        transport.ack(again)

    def test_release_does_not_count(self, transport: Transport, queue: str) -> None:
        transport.publish([Outgoing(queue, make_envelope(1))])
        first = _drain(transport, [queue], 1)
        transport.release(first)
        again = _drain(transport, [queue], 1)
        assert _ids(again) == ["m-1"], "a released message must be deliverable again"
        assert again[0].delivery_count == 1, \
            f"release must not count a delivery (got delivery_count {again[0].delivery_count})" \
            "; check release undoes the count the fetch added"
        if transport.capabilities.settle_anywhere:
            # A prefork worker's process gives back what a lost child last said it held.
            transport.release(first)  # stale: the message is another delivery's now
            assert _drain(transport, [queue], 1, timeout=0.3) == [], \
                "releasing a delivery a second time, after its message was delivered again, " \
                "put the message back: it would run twice. Tell deliveries apart by more " \
                "than their delivery_count, which a release takes back"
        transport.ack(again)

    def test_settling_a_lapsed_delivery_changes_nothing(
            self, transport: Transport, short_lease_transport: Transport, queue: str) -> None:
        holder = short_lease_transport
        transport.publish([Outgoing(queue, make_envelope(1))])
        stale = _drain(holder, [queue], 1)
        assert stale and holder.holds(stale[0]), "holds() must be true for a delivery the " \
            "consumer holds: the worker gives back, unrun, every message it says is not held"
        if not transport.capabilities.leases:
            holder.ack(stale)  # without leases a delivery lapses only with its connection
            return
        # The holder stops renewing (paused, or cut off): the message goes to another.
        again = _drain(transport, [queue], 1, timeout=self.lease_seconds * 6)
        assert _ids(again) == ["m-1"], "a message whose lease ran out was not delivered again"
        holder.release(stale)
        holder.ack(stale)
        assert _drain(holder, [queue], 1, timeout=self.lease_seconds * 2) == [], \
            "releasing a delivery whose lease ran out (the message went to another consumer " \
            "since) put the message back; check release only acts on the delivery it was given"
        transport.extend_lease(again, 60)
        transport.ack(again)
        assert _drain(transport, [queue], 1, timeout=0.3) == [], \
            "acking the live delivery after a stale one was settled must remove the message"

    def test_close_twice(self, transport: Transport) -> None:
        transport.close()
        transport.close()

    # ------------------------------------------------------------------ capabilities

    def test_priorities(self, transport: Transport, queue: str) -> None:
        levels = [0, 5, 9, 5, 0, 3]
        transport.publish([Outgoing(queue, make_envelope(n), priority=p)
                           for n, p in enumerate(levels)])
        got = _drain(transport, [queue], len(levels))
        if transport.capabilities.priorities:
            assert _ids(got) == ["m-2", "m-1", "m-3", "m-5", "m-0", "m-4"], \
                "capabilities.priorities is declared: higher priorities must come first and " \
                "equal ones in arrival order; check the claim orders by priority DESC, arrival"
        else:
            assert sorted(_ids(got)) == sorted(f"m-{n}" for n in range(len(levels))), \
                "without priorities, messages sent with a priority must still all arrive"

    def test_broadcast_is_declared_or_refused(self, transport: Transport, queue: str) -> None:
        if transport.capabilities.broadcast:
            return  # proven by kernel.testing.BroadcastSuite, which such a transport runs
        with pytest.raises(MissingCapability):
            transport.broadcast(queue, "k", make_envelope(0))
        with pytest.raises(MissingCapability):
            transport.subscribe(queue)

    def test_delayed_delivery(self, transport: Transport, queue: str) -> None:
        due = time.time() + 0.6
        delayed = Outgoing(queue, make_envelope(0), not_before=due)
        if not transport.capabilities.delayed_delivery:
            with pytest.raises((MissingCapability, NotImplementedError)):
                transport.publish([delayed])
            return
        transport.publish([delayed, Outgoing(queue, make_envelope(1))])
        now = transport.fetch([queue], 10, 0)
        now += transport.fetch([queue], 10, 0.1) if not now else []
        assert _ids(now) == ["m-1"], "only the undelayed message may be delivered before " \
            "its not_before; check fetch skips messages whose not_before is in the future"
        later = transport.fetch([queue], 10, 5)
        arrived = time.time()
        assert _ids(later) == ["m-0"], "a delayed message must be delivered once due, also " \
            "to a fetch already waiting; check fetch wakes when the earliest delay ends"
        assert arrived >= due, "a delayed message was delivered before its not_before"

    def test_dead_consumer_redelivers(self, transport: Transport,
                                      short_lease_transport: Transport, queue: str,
                                      request: pytest.FixtureRequest) -> None:
        transport.publish([Outgoing(queue, make_envelope(1))])
        if transport.capabilities.leases:
            start = time.monotonic()
            held = _drain(short_lease_transport, [queue], 1)
            assert held, "the short-lease consumer got nothing"
            # The holder never acks or renews, like a consumer that died.
            again = _drain(transport, [queue], 1, timeout=self.lease_seconds * 6)
            assert _ids(again) == ["m-1"], "a message whose lease ran out was not " \
                "delivered to another consumer; check fetch takes expired leases back"
            assert time.monotonic() - start >= self.lease_seconds * 0.95, \
                "a leased message was redelivered before its lease ended"
            assert again[0].delivery_count == 2, "a redelivery after an expired lease must " \
                f"count (delivery_count 2, got {again[0].delivery_count})"
            transport.ack(again)
            return
        # Without leases the broker must notice the consumer's connection is gone.
        holder: Transport = request.getfixturevalue("other_transport")
        assert _drain(holder, [queue], 1), "the second connection got nothing"
        holder.close()
        again = _drain(transport, [queue], 1, timeout=10)
        assert _ids(again) == ["m-1"], "a message held by a closed connection was lost; " \
            "without leases the broker must give it back when the consumer goes away"

    def test_extend_lease_keeps_message(self, transport: Transport,
                                        short_lease_transport: Transport, queue: str) -> None:
        holder = short_lease_transport
        transport.publish([Outgoing(queue, make_envelope(1))])
        held = _drain(holder, [queue], 1)
        holder.extend_lease(held, 60)
        wait = self.lease_seconds * 2 if transport.capabilities.leases else 0.3
        stolen = transport.fetch([queue], 1, wait)
        assert stolen == [], "a message whose lease was extended went to another consumer; " \
            "check extend_lease moves the lease end for these deliveries"
        holder.ack(held)

    def test_dead_letter(self, transport: Transport, queue: str) -> None:
        transport.publish([Outgoing(queue, make_envelope(1))])
        got = _drain(transport, [queue], 1)
        transport.reject(got[0], requeue=False, reason="poison: suite")
        assert transport.fetch([queue], 1, 0.3) == [], \
            "reject(requeue=False) must not put the message back in its queue"
        if not transport.capabilities.dead_letter:
            with pytest.raises(NotImplementedError):
                transport.dead_letters(queue)
            return
        dead = transport.dead_letters(queue)
        assert _ids(dead) == ["m-1"], "capabilities.dead_letter is declared: a message " \
            "rejected without requeue must be readable with dead_letters(queue)"
        assert dead[0].extra.get("reason") == "poison: suite", \
            "dead_letters must keep the reason in Delivery.extra['reason']"
        assert _ids(transport.dead_letters(queue)) == ["m-1"], \
            "dead_letters must read without removing"

    def test_size_and_purge(self, transport: Transport, queue: str) -> None:
        if not transport.capabilities.inspect_queues:
            with pytest.raises(NotImplementedError):
                transport.size(queue)
            with pytest.raises(NotImplementedError):
                transport.purge(queue)
            return
        assert transport.size(queue) == 0, "an unused queue must have size 0"
        delayed = 1 if transport.capabilities.delayed_delivery else 0
        transport.publish([Outgoing(queue, make_envelope(n)) for n in range(3)])
        if delayed:
            transport.publish([Outgoing(queue, make_envelope(9), not_before=time.time() + 60)])
        assert transport.size(queue) == 3 + delayed, "size must count waiting messages, " \
            "delayed ones included"
        held = _drain(transport, [queue], 1)
        assert transport.size(queue) == 2 + delayed, "size must not count a message a " \
            "consumer holds"
        assert transport.purge(queue) == 2 + delayed, "purge must return how many waiting " \
            "messages it deleted"
        assert transport.size(queue) == 0, "after purge the queue must be empty"
        assert transport.fetch([queue], 1, 0.1) == [], "a purged message was delivered"
        transport.ack(held)
