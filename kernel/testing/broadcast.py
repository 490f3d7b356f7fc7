"""Conformance suite for broadcasting (`Transport.broadcast` / `Transport.subscribe`).

For transports that declare ``capabilities.broadcast``. Give it the same two fixtures as
`TransportSuite` (``transport`` and ``other_transport``, two connections to one broker)::

    from kernel.testing.broadcast import BroadcastSuite

    class TestMyBroadcast(BroadcastSuite):
        @pytest.fixture
        def transport(self): ...
        @pytest.fixture
        def other_transport(self): ...

Each test uses a fresh exchange name, so one broker serves them all, also under pytest-xdist.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from kernel.interfaces.transport import Subscription, Transport
from kernel.message import Envelope
from kernel.testing.transport import make_envelope, wake_latency

__all__ = ["BroadcastSuite"]


def collect(sub: Subscription, count: int, timeout: float = 5.0) -> list[tuple[str, Envelope]]:
    """Read from `sub` until `count` messages arrived or `timeout` passed."""
    got: list[tuple[str, Envelope]] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        got += sub.get(min(left, 0.5))
    return got


class BroadcastSuite:
    """The guarantees of broadcast and subscribe, one test each."""

    @pytest.fixture
    def transport(self) -> Iterator[Transport]:
        pytest.fail("override the `transport` fixture to return a fresh connection")
        yield  # pragma: no cover

    @pytest.fixture
    def other_transport(self) -> Iterator[Transport]:
        pytest.fail("override the `other_transport` fixture: a second connection to the "
                    "same broker")
        yield  # pragma: no cover

    @pytest.fixture
    def exchange(self) -> str:
        return f"suite-ex-{uuid.uuid4().hex[:12]}"

    def test_the_capability_is_declared(self, transport: Transport) -> None:
        assert transport.capabilities.broadcast, "a transport under BroadcastSuite must declare " \
                                                 "capabilities.broadcast"

    def test_every_subscriber_gets_each_message(self, transport: Transport,
                                                other_transport: Transport,
                                                exchange: str) -> None:
        first, second = transport.subscribe(exchange), other_transport.subscribe(exchange)
        try:
            other_transport.broadcast(exchange, "worker.online", make_envelope(1, hostname="w1"))
            for sub in (first, second):
                got = collect(sub, 1)
                assert len(got) == 1, f"a subscriber got {len(got)} messages for 1 broadcast"
                key, envelope = got[0]
                assert key == "worker.online"
                assert envelope.headers["hostname"] == "w1"
                assert envelope.body == make_envelope(1).body, "the body changed in transit"
        finally:
            first.close()
            second.close()

    def test_patterns_select_routing_keys(self, transport: Transport, exchange: str) -> None:
        workers, everything = transport.subscribe(exchange, "worker.#"), transport.subscribe(
            exchange)
        try:
            for n, key in enumerate(("task.sent", "worker.heartbeat", "task.multi")):
                transport.broadcast(exchange, key, make_envelope(n))
            assert [k for k, _ in collect(everything, 3)] == [
                "task.sent", "worker.heartbeat", "task.multi"], "'#' must match every key, " \
                                                                "in the order sent"
            assert [k for k, _ in collect(workers, 1)] == ["worker.heartbeat"]
            assert workers.get(0.2) == [], "'worker.#' matched a task.* key"
        finally:
            workers.close()
            everything.close()

    def test_exchanges_are_separate(self, transport: Transport, exchange: str) -> None:
        sub = transport.subscribe(exchange)
        try:
            transport.broadcast(exchange + "-other", "k", make_envelope(1))
            transport.broadcast(exchange, "k", make_envelope(2))
            got = collect(sub, 1)
            assert [e.headers["id"] for _, e in got] == ["m-2"]
            assert sub.get(0.2) == [], "a subscriber got a message of another exchange"
        finally:
            sub.close()

    def test_order_is_kept(self, transport: Transport, other_transport: Transport,
                           exchange: str) -> None:
        sub = transport.subscribe(exchange)
        try:
            for n in range(100):
                other_transport.broadcast(exchange, "k", make_envelope(n))
            got = collect(sub, 100)
            assert [e.headers["id"] for _, e in got] == [f"m-{n}" for n in range(100)]
        finally:
            sub.close()

    def test_broadcast_without_subscribers_is_fine(self, transport: Transport,
                                                   exchange: str) -> None:
        transport.broadcast(exchange, "k", make_envelope(1))
        sub = transport.subscribe(exchange)
        try:
            assert sub.get(0.2) == [], "a subscriber got a message sent before it subscribed"
        finally:
            sub.close()

    def test_get_blocks_until_a_message_then_wakes(self, transport: Transport,
                                                   other_transport: Transport,
                                                   exchange: str) -> None:
        sub = transport.subscribe(exchange)
        try:
            cpu = time.process_time()
            started = time.monotonic()
            assert sub.get(0.3) == []
            assert time.monotonic() - started >= 0.25, "get returned before its timeout"
            got, latency = wake_latency(
                lambda: sub.get(5.0),
                lambda: other_transport.broadcast(exchange, "k", make_envelope(1)))
            assert len(got) == 1
            assert latency < 0.5, f"get woke {latency:.3f} s after the broadcast"
            assert time.process_time() - cpu < 0.3, "get spins the CPU while it waits"
        finally:
            sub.close()

    def test_a_direct_exchange_routes_exact_keys_only(self, transport: Transport,
                                                      other_transport: Transport,
                                                      exchange: str) -> None:
        """Remote-control replies: ``reply.<namespace>.pidbox`` delivers to the subscriber of
        exactly that routing key, and to no other."""
        direct = f"reply.{exchange}.pidbox"
        mine, theirs = transport.subscribe(direct, "client-a"), transport.subscribe(direct,
                                                                                    "client-b")
        try:
            for n in range(3):
                other_transport.broadcast(direct, "client-a", make_envelope(n, ticket="t"))
            got = collect(mine, 3)
            assert [e.headers["id"] for _, e in got] == ["m-0", "m-1", "m-2"], \
                "a direct subscriber must get each message for its key, in order"
            assert all(k == "client-a" for k, _ in got)
            assert theirs.get(0.2) == [], "a direct exchange delivered to another key"
        finally:
            mine.close()
            theirs.close()

    def test_a_direct_subscription_closed_gets_nothing_more(self, transport: Transport,
                                                           exchange: str) -> None:
        direct = f"reply.{exchange}.pidbox"
        sub = transport.subscribe(direct, "gone")
        sub.close()
        transport.broadcast(direct, "gone", make_envelope(1))  # nobody listens: not an error
        again = transport.subscribe(direct, "gone")
        try:
            assert again.get(0.2) == [], "a reply sent while nobody listened was kept"
        finally:
            again.close()

    def test_close_twice_and_others_keep_listening(self, transport: Transport,
                                                   exchange: str) -> None:
        gone, staying = transport.subscribe(exchange), transport.subscribe(exchange)
        gone.close()
        gone.close()
        try:
            transport.broadcast(exchange, "k", make_envelope(1))
            assert len(collect(staying, 1)) == 1
        finally:
            staying.close()
