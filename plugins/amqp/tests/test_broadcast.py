"""Broadcast on RabbitMQ: the kernel's conformance suite, and the exchanges as Celery and Flower
declare them (RabbitMQ refuses a redeclaration with other flags, so this is what lets a Celery
worker, Flower and kernel share a broker)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from kernel.plugin import ConfigurationError
from kernel.testing.broadcast import BroadcastSuite, collect
from kernel.testing.transport import make_envelope, wait_for
from kernel_amqp.transport import AmqpTransport
from tests import test_suite  # the suite's fixtures, without collecting its tests here


@pytest.fixture
def transport(url: str) -> Iterator[AmqpTransport]:
    t = AmqpTransport(url, {})
    yield t
    t.close()


class TestAmqpBroadcast(BroadcastSuite):
    transport = test_suite.TestAmqpTransport.transport
    other_transport = test_suite.TestAmqpTransport.other_transport


def test_exchanges_are_declared_as_celery_declares_them(transport: AmqpTransport, url: str,
                                                        celery: Any) -> None:
    """After kernel declared them, Celery's own exchange objects declare without a
    PRECONDITION_FAILED, and a kernel subscriber hears a Celery broadcast."""
    from celery.events import event_exchange

    app = celery.Celery("bcast", broker=url)
    mailbox = app.control.mailbox
    subs = [transport.subscribe("celeryev", "worker.#"),
            transport.subscribe(mailbox.exchange.name),
            transport.subscribe(mailbox.reply_exchange.name, "some-oid")]
    try:
        with app.connection_for_write() as conn:
            channel = conn.default_channel
            for exchange in (event_exchange, mailbox.exchange, mailbox.reply_exchange):
                exchange(channel).declare()  # raises if the flags differ from kernel's
            node = f"n-{uuid.uuid4().hex[:8]}"
            with app.events.default_dispatcher(hostname=node) as dispatcher:
                dispatcher.send("worker-heartbeat", freq=2.0)
            app.control.broadcast("ping", reply=False, connection=conn)
        (key, envelope), = [m for m in collect(subs[0], 5) if node in m[1].body.decode()]
        assert key == "worker.heartbeat"
        got = collect(subs[1], 1)
        assert got and b'"method": "ping"' in got[0][1].body, "kernel missed a Celery command"
    finally:
        for sub in subs:
            sub.close()
        app.close()


def test_a_kernel_broadcast_reaches_a_kombu_consumer_of_celeryev(transport: AmqpTransport,
                                                                 url: str, celery: Any) -> None:
    from kombu import Connection, Queue

    from celery.events import event_exchange

    with Connection(url) as conn:
        queue = Queue(f"celeryev.{uuid.uuid4().hex}", event_exchange, "task.#",
                      auto_delete=True, exclusive=True)(conn.default_channel)
        queue.declare()
        transport.broadcast("celeryev", "task.succeeded", make_envelope(3))
        transport.broadcast("celeryev", "worker.online", make_envelope(4))
        message = wait_for(lambda: queue.get(no_ack=True), 5,
                           "a kombu consumer of celeryev to get the kernel's event")
        assert message.delivery_info["routing_key"] == "task.succeeded"
        assert message.headers == make_envelope(3).headers
        assert message.properties["delivery_mode"] == 1, "events are transient, as Celery's"
        assert queue.get(no_ack=True) is None, "task.# took a worker.* key"


def test_direct_exchanges_take_exact_keys_only(transport: AmqpTransport) -> None:
    with pytest.raises(ConfigurationError, match="direct exchange"):
        transport.subscribe("reply.celery.pidbox", "#")
