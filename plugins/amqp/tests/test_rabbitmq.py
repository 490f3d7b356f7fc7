"""What the AMQP transport promises beyond the suite: confirmed publishes, redelivery when a
consumer process dies, delays that do not block each other, recovery after a lost connection,
and the topology a Celery client expects."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlparse

import pytest

from kernel.plugin import ConfigurationError, ConnectionFailed, Envelope
from kernel.interfaces.transport import DEAD_LETTER_SUFFIX, Delivery, Outgoing
from kernel.testing.transport import make_envelope, wait_for
from kernel_amqp.transport import AmqpTransport

NewQueue = Callable[[str], str]


@pytest.fixture
def transport(url: str) -> Iterator[AmqpTransport]:
    t = AmqpTransport(url, {})
    yield t
    t.close()


@pytest.fixture
def other(url: str) -> Iterator[AmqpTransport]:
    t = AmqpTransport(url, {})
    yield t
    t.close()


def ids(deliveries: list[Delivery]) -> list[str]:
    return [d.envelope.headers["id"] for d in deliveries]


def drain(t: AmqpTransport, queue: str, count: int, timeout: float = 10.0) -> list[Delivery]:
    got: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += t.fetch([queue], count - len(got), 0.5)
    return got


def test_publish_returns_once_the_broker_holds_every_message(
        transport: AmqpTransport, other: AmqpTransport, new_queue: NewQueue) -> None:
    queue = new_queue("confirm")
    transport.publish([Outgoing(queue, make_envelope(n)) for n in range(50)])
    # No waiting: a confirmed publish is visible to every other connection at once.
    assert other.size(queue) == 50


def test_unconfirmed_publishes_arrive_in_order(
        url: str, other: AmqpTransport, new_queue: NewQueue) -> None:
    fast = AmqpTransport(url, {"confirm_publish": "false", "confirm_timeout": 2})
    try:
        queue = new_queue("unconfirmed")
        fast.publish([Outgoing(queue, make_envelope(n)) for n in range(50)])
        assert ids(drain(other, queue, 50)) == [f"m-{n}" for n in range(50)]
        # kernel's own copies stay confirmed beside them: a dead letter is there on return.
        fast.publish([Outgoing(queue, make_envelope(50))])
        [delivery] = drain(fast, queue, 1)
        fast.reject(delivery, requeue=False, reason="test")
        assert other.size(queue + DEAD_LETTER_SUFFIX) == 1
    finally:
        fast.close()
    with pytest.raises(ConfigurationError, match="confirm_publish"):
        AmqpTransport(url, {"confirm_publish": "maybe"})


def test_publish_to_a_vanished_queue_fails_loudly_then_recovers(
        transport: AmqpTransport, other: AmqpTransport, new_queue: NewQueue) -> None:
    queue = new_queue("vanish")
    transport.publish([Outgoing(queue, make_envelope(1))])
    other.delete_queue(queue)  # behind the publisher's back: its declaration is stale
    with pytest.raises(ConnectionFailed, match="refused"):
        transport.publish([Outgoing(queue, make_envelope(2))])
    transport.publish([Outgoing(queue, make_envelope(3))])
    assert ids(drain(other, queue, 1)) == ["m-3"]


def test_message_is_a_real_amqp_message(transport: AmqpTransport, new_queue: NewQueue,
                                        url: str) -> None:
    """What a Celery worker (kombu) reads off the queue: AMQP headers and properties, not
    kombu's Redis JSON envelope; and the queue as kombu declares it for Celery (with
    ``task_queue_max_priority = 10``), so redeclaring it is not refused."""
    from kombu import Connection, Exchange, Queue

    queue = new_queue("wire")
    sent = make_envelope(7)
    transport.publish([Outgoing(queue, sent, priority=4)])
    celery_queue = Queue(queue, Exchange(queue, "direct"), routing_key=queue,
                         queue_arguments={"x-max-priority": 10})
    with Connection(url) as conn:
        bound = celery_queue(conn.default_channel)
        bound.declare()
        message = bound.get(no_ack=True)
        assert message is not None
        assert message.payload == [[7], {}, {"callbacks": None}]  # decoded by content type
        assert message.headers == sent.headers
        assert message.content_type == "application/json"
        assert message.properties["correlation_id"] == "m-7"
        assert message.properties["reply_to"] == "suite-reply"
        assert message.properties["priority"] == 4
        assert message.properties["delivery_mode"] == 2
        assert message.delivery_info["exchange"] == queue
        assert message.delivery_info["routing_key"] == queue


CONSUMER = textwrap.dedent("""
    import sys
    from kernel_amqp.transport import AmqpTransport
    url, queue = sys.argv[1], sys.argv[2]
    t = AmqpTransport(url, {})
    got = []
    while len(got) < 3:
        got += t.fetch([queue], 3 - len(got), 5)
    print("holding", len(got), flush=True)
    sys.stdin.readline()  # never acks: killed while holding
""")


def test_messages_of_a_killed_consumer_are_redelivered(
        transport: AmqpTransport, url: str, new_queue: NewQueue) -> None:
    queue = new_queue("killed")
    transport.publish([Outgoing(queue, make_envelope(n)) for n in range(3)])
    child = subprocess.Popen([sys.executable, "-c", CONSUMER, url, queue],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "holding 3"
        assert transport.fetch([queue], 3, 0.3) == [], "held messages went to a second consumer"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        again = drain(transport, queue, 3)
    finally:
        child.kill()
        child.wait()
    assert sorted(ids(again)) == ["m-0", "m-1", "m-2"]
    assert [d.delivery_count for d in again] == [2, 2, 2]
    transport.ack(again)


def test_acks_settle_exactly_the_deliveries_given(
        url: str, other: AmqpTransport, new_queue: NewQueue) -> None:
    """A batch of acks that covers every delivery up to its highest goes out as one AMQP ack
    with the ``multiple`` flag; it must never settle a delivery still held below that tag, nor
    one that arrived but was not handed out."""
    queue = new_queue("acks")
    other.publish([Outgoing(queue, make_envelope(n)) for n in range(8)])
    consumer = AmqpTransport(url, {})
    try:
        held = drain(consumer, queue, 6)
        assert ids(held) == [f"m-{n}" for n in range(6)]
        # m-0 still runs while m-1..m-3 finish (threads, prefork); then m-4 and m-5 finish
        # after m-0 did, while m-6 and m-7 may already wait in the prefetch buffer.
        consumer.ack(held[1:4] + [held[2]])  # the same delivery twice: settled once
        consumer.ack([held[0]])
        consumer.ack(held[4:6])
        consumer.ack([held[2]])  # twice: a no-op
        assert consumer.fetch([queue], 1, 5)[0].envelope.headers["id"] == "m-6"
    finally:
        consumer.close()  # what it still held goes back to the queue
    back = drain(other, queue, 2)
    assert sorted(ids(back)) == ["m-6", "m-7"], "an ack settled more or less than it was given"
    other.ack(back)


def test_counts_survive_give_backs(transport: AmqpTransport, new_queue: NewQueue) -> None:
    queue = new_queue("count")
    transport.publish([Outgoing(queue, make_envelope(1))])
    counts = []
    for _ in range(3):
        got = drain(transport, queue, 1)
        counts.append(got[0].delivery_count)
        transport.reject(got[0], requeue=True)
    got = drain(transport, queue, 1)
    transport.release(got)
    counts.append(drain(transport, queue, 1)[0].delivery_count)
    assert counts == [1, 2, 3, 4], "each requeue must count once, a release not at all"


def test_delays_do_not_wait_behind_longer_ones(transport: AmqpTransport,
                                               new_queue: NewQueue) -> None:
    queue = new_queue("delay")
    start = time.time()
    long_env = Envelope(b"long", {"id": "long", "nested": {"a": [1, None]}},
                        {"correlation_id": "long"})
    transport.publish([Outgoing(queue, long_env, not_before=start + 4),
                       Outgoing(queue, make_envelope(1), not_before=start + 1)])
    assert transport.size(queue) == 2, "delayed messages count as waiting"
    first = drain(transport, queue, 1, timeout=5)
    assert ids(first) == ["m-1"] and 1 <= time.time() - start < 3.5, \
        "a 1 s delay waited for a 4 s one published before it"
    second = drain(transport, queue, 1, timeout=6)
    assert time.time() - start >= 4
    assert second[0].envelope.headers == long_env.headers, \
        "RabbitMQ's x-death bookkeeping must not show in the delivered headers"
    assert second[0].delivery_count == 1
    transport.ack(first + second)


def test_catching_up_with_nothing_arrived_does_not_wait(
        transport: AmqpTransport, new_queue: NewQueue, monkeypatch: pytest.MonkeyPatch) -> None:
    """py-amqp's shortest wait is a millisecond: a worker's fetch and an rpc client's wait
    catch up on every call, so when nothing arrived they must not call into it at all."""
    queue = new_queue("idle")
    assert transport.fetch([queue], 1, 0) == []
    link = transport._link
    assert link is not None
    calls: list[float] = []
    real = link.raw.drain_events
    monkeypatch.setattr(link.raw, "drain_events",
                        lambda timeout=None: calls.append(timeout) or real(timeout=timeout))
    for _ in range(20):
        link.catch_up()
    assert calls == [], "catching up on an idle connection waited for frames"


def stack_of(thread: threading.Thread) -> set[str]:
    """The names of the functions `thread` is in."""
    frame = sys._current_frames().get(thread.ident or 0)
    names = set()
    while frame is not None:
        names.add(frame.f_code.co_name)
        frame = frame.f_back
    return names


def test_acks_do_not_wait_for_a_fetch_that_waits(
        url: str, other: AmqpTransport, new_queue: NewQueue,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker acks from one thread while another waits in `fetch` for messages; the ack
    goes out at once (it opens the prefetch window the fetch may be waiting on)."""
    monkeypatch.setattr("kernel_amqp.transport.SLICE", 10.0)  # a waiting fetch held it 10 s
    queue = new_queue("ackwait")
    other.publish([Outgoing(queue, make_envelope(1))])
    consumer = AmqpTransport(url, {})
    try:
        held = drain(consumer, queue, 1)
        waiting = threading.Thread(target=consumer.fetch, args=([queue], 1, 5.0))
        waiting.start()
        wait_for(lambda: {"wait_readable", "drain"} & stack_of(waiting), 5,
                 "the fetch to wait for the broker")
        consumer.ack(held)
        assert waiting.is_alive(), "the ack waited for the fetch to give up"
        other.publish([Outgoing(queue, make_envelope(2))])  # ends the fetch
        waiting.join(10)
    finally:
        consumer.close()  # the fetched m-2 goes back, unacked
    assert ids(drain(other, queue, 1)) == ["m-2"]
    assert other.fetch([queue], 1, 0.3) == [], "the acked message came back"


def test_a_lost_connection_is_replaced_by_the_next_call(
        transport: AmqpTransport, other: AmqpTransport, new_queue: NewQueue) -> None:
    queue = new_queue("reconnect")
    other.publish([Outgoing(queue, make_envelope(n)) for n in range(2)])
    held = drain(transport, queue, 1)
    assert transport._link is not None
    assert transport.holds(held[0])
    generation = transport._link.generation
    # What a broker restart looks like from here: the socket dies under the connection. The
    # next call notices before it relies on it, and connects again instead of failing.
    transport._link.raw.sock.shutdown(socket.SHUT_RDWR)
    again = drain(transport, queue, 2)
    assert transport._link is not None and transport._link.generation != generation
    assert not transport.holds(held[0]), \
        "a delivery of the dropped connection is RabbitMQ's again: a worker must not start it"
    assert all(transport.holds(d) for d in again)
    transport.ack(held)  # settled by the broker already: a no-op, not an error
    assert sorted(ids(again)) == ["m-0", "m-1"]
    assert {d.delivery_count for d in again if d.envelope.headers["id"] == ids(held)[0]} == {2}
    transport.ack(again)
    other.publish([Outgoing(queue, make_envelope(5))])
    assert ids(wait_for(lambda: transport.fetch([queue], 1, 0.5), 5, "a new message")) == ["m-5"]


def test_a_broker_that_does_not_answer_is_connection_failed() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: the connect is refused
        t = AmqpTransport(f"amqp://guest:guest@127.0.0.1:{port}//", {"max_retries": 0})
        try:
            with pytest.raises(ConnectionFailed, match="cannot connect to RabbitMQ at .*check that "
                                                       "it runs"):
                t.size("anything")
        finally:
            t.close()


@pytest.mark.parametrize("silent", [False, True], ids=["refused", "never-answers"])
def test_a_send_to_an_unreachable_broker_raises_within_broker_connection_timeout(
        silent: bool) -> None:
    from kernel import App
    from kernel.testing.servers import free_port, silent_server

    timeout = 1.0
    with silent_server() as quiet:
        port = quiet if silent else free_port()
        app = App("outage", broker=f"amqp://guest:guest@127.0.0.1:{port}//",
                  config={"broker_connection_timeout": timeout, "result_backend": None})
        began = time.monotonic()
        with pytest.raises(ConnectionFailed, match="broker_connection_timeout"):
            app.send_task("outage.add", (1, 2), queue="never")
        assert time.monotonic() - began <= timeout + 0.5
        app.close()


def test_a_connection_found_dead_by_the_publish_is_replaced_and_the_batch_sent_once(
        transport: AmqpTransport, other: AmqpTransport, new_queue: NewQueue,
        monkeypatch: pytest.MonkeyPatch) -> None:
    queue = new_queue("stale")
    transport.publish([Outgoing(queue, make_envelope(0))])
    assert transport._link is not None
    link = transport._link
    # A connection whose death the pre-publish check cannot see yet (the broker went away
    # an instant ago): the first write fails, before any message left.
    monkeypatch.setattr(link, "catch_up", lambda: None)
    link.raw.sock.shutdown(socket.SHUT_RDWR)
    transport.publish([Outgoing(queue, make_envelope(1))])
    assert transport._link is not None and transport._link is not link
    assert sorted(ids(drain(other, queue, 2))) == ["m-0", "m-1"]
    assert other.fetch([queue], 1, 0.3) == [], "sent once"


def test_plugin_registers_the_schemes() -> None:
    from kernel_amqp import plugin

    (spec,) = plugin.kernel_transports()
    assert spec.schemes == ("amqp", "amqps", "pyamqp")
    assert not spec.capabilities.leases and spec.capabilities.delayed_delivery
    assert "kombu" not in plugin.__dict__ and "amqp" not in plugin.__dict__


def test_counts_stay_exact_when_consumers_keep_dying(
        transport: AmqpTransport, url: str, new_queue: NewQueue) -> None:
    """A classic queue only flags a redelivery; the transport turns it into an exact count, so
    the delivery cap can stop a message that kills its worker every time."""
    queue = new_queue("dying")
    transport.publish([Outgoing(queue, make_envelope(1))])
    counts = []
    for _ in range(3):
        doomed = AmqpTransport(url, {})
        try:
            (held,) = drain(doomed, queue, 1)
            counts.append(held.delivery_count)
            assert doomed._link is not None
            doomed._link.raw.sock.shutdown(socket.SHUT_RDWR)  # dies holding it, unacked
        finally:
            doomed.close()
    (last,) = drain(transport, queue, 1)
    counts.append(last.delivery_count)
    assert counts == [1, 2, 3, 4], "every delivery must count once"
    transport.ack([last])
    assert transport.size(queue) == 0, "recounting must leave no copy behind"


def test_heartbeats_keep_an_idle_consumer_connected(url: str, other: AmqpTransport,
                                                    new_queue: NewQueue) -> None:
    """A worker whose slots all run long tasks does not fetch; heartbeats from its own thread
    keep RabbitMQ from closing the connection, which would redeliver what it holds. The
    control: a connection with the same heartbeat that sends none is closed meanwhile."""
    import amqp

    queue = new_queue("heartbeat")
    busy = AmqpTransport(url, {"heartbeat": 1})
    parsed = urlparse(url)
    silent = amqp.Connection(f"{parsed.hostname}:{parsed.port or 5672}",
                             userid=parsed.username, password=parsed.password, heartbeat=1)
    try:
        busy.publish([Outgoing(queue, make_envelope(1))])
        held = drain(busy, queue, 1)
        assert busy._link is not None and busy._link.heartbeat == 1
        generation = busy._link.generation
        silent.connect()

        def closed_by_rabbitmq() -> bool:
            try:
                silent.drain_events(timeout=0.2)
            except socket.timeout:
                return False
            except Exception:  # noqa: BLE001 - any error: the broker hung up
                return True
            return False

        wait_for(closed_by_rabbitmq, 15, "RabbitMQ to close a connection that sends no "
                                         "heartbeats (the control)", interval=0)
        assert busy._link is not None and busy._link.generation == generation, \
            "the idle consumer lost its connection: heartbeats were not sent"
        busy.ack(held)
        assert other.fetch([queue], 1, 0.3) == [] and other.size(queue) == 0, \
            "the held message came back: the connection holding it was dropped"
    finally:
        busy.close()
        silent.collect()


def test_quorum_queues_count_deliveries_themselves(url: str, new_queue: NewQueue) -> None:
    queue = new_queue("quorum")
    options = {"queue_type": "quorum"}
    with pytest.raises(ConfigurationError, match="quorum queues have no priorities"):
        AmqpTransport(url, {**options, "max_priority": 5})
    transport = AmqpTransport(url, options)
    try:
        assert not transport.capabilities.priorities, "quorum queues must not claim priorities"
        transport.publish([Outgoing(queue, make_envelope(1))])
        counts = []
        for _ in range(2):
            doomed = AmqpTransport(url, options)
            try:
                (held,) = drain(doomed, queue, 1)
                counts.append(held.delivery_count)
                assert doomed._link is not None
                doomed._link.raw.sock.shutdown(socket.SHUT_RDWR)
            finally:
                doomed.close()
        (last,) = drain(transport, queue, 1)
        counts.append(last.delivery_count)
        assert counts == [1, 2, 3]
        assert "x-delivery-count" not in last.envelope.headers, "broker bookkeeping leaked"
        transport.ack([last])
        assert transport.size(queue) == 0
    finally:
        transport.close()
