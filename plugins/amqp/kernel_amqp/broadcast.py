"""Broadcast over RabbitMQ exchanges, declared as Celery declares them, so Celery workers,
Flower and kernel meet on the same exchanges.

Exchanges (RabbitMQ refuses to redeclare an exchange with other flags, so the names Celery uses
keep Celery's flags):

* ``celeryev`` (events): topic, durable;
* ``<namespace>.pidbox`` (remote-control commands, ``celery.pidbox``): fanout, transient;
* ``reply.<namespace>.pidbox`` (replies): direct, transient;
* any other name: topic, transient, deleted by RabbitMQ once its last subscriber left.

An exchange that already exists with other flags (declared by another version) is used as it
is, with a warning. Messages are transient (delivery mode 1), as Celery sends events.

Broadcasts go out on a connection of their own, neither confirmed nor mandatory (nobody
listening is fine; a broadcast is at-most-once, and waiting for a confirm of each batch of
events cost a drain with task events a fifth of its speed), so they never disturb the
consumers of the transport that sends them. RabbitMQ handles a connection's frames in order:
what was published before the connection closes is routed. A subscription
is an exclusive, auto-delete queue ``<exchange>.<random>`` bound with the pattern (fanout
exchanges route every key, so the pattern is applied here; direct exchanges route exact keys
only), consumed without acks: at-most-once, as the contract says. After a lost connection the
subscription connects, declares a fresh queue and binds it again by itself.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from typing import Any

from amqp.exceptions import NotFound, PreconditionFailed

from kernel.plugin import ConfigurationError, ConnectionFailed, Envelope, exchange_type
from kernel.interfaces.transport import Subscription, topic_matches
from kernel_amqp.link import ERRORS, Link, connect
from kernel_amqp.wire import TRANSIENT, from_message, to_message

log = logging.getLogger(__name__)
#: how long a subscription waits between attempts to reach a RabbitMQ that went away.
RECONNECT_PAUSE = 0.5
_LOST: tuple[type[BaseException], ...] = (ConnectionFailed, *ERRORS)


def exchange_kind(name: str) -> tuple[str, bool, bool]:
    """(type, durable, auto_delete) of the exchange called `name`."""
    kind = exchange_type(name)
    if name == "celeryev":
        return kind, True, False
    return kind, False, kind == "topic"


def declare_exchange(link: Link, name: str) -> None:
    if name in link.declared:
        return
    kind, durable, auto_delete = exchange_kind(name)
    try:
        link.admin.exchange_declare(name, kind, durable=durable, auto_delete=auto_delete)
    except PreconditionFailed as exc:
        link.quietly(lambda ch: ch.exchange_declare(name, kind, passive=True))
        log.warning("exchange %r exists with other flags than kernel declares (%s); using it "
                    "as it is", name, exc)
    link.declared.add(name)


class Broadcaster:
    """Publishes broadcasts for one transport, on a connection opened at the first one."""

    def __init__(self, url: str, options: dict[str, Any]) -> None:
        self.url = url
        self.options = options
        self._lock = threading.Lock()
        self._link: Link | None = None

    def send(self, exchange: str, routing_key: str, envelope: Envelope) -> None:
        message = to_message(envelope, int(envelope.properties.get("priority") or 0),
                             delivery_mode=TRANSIENT)
        with self._lock:
            # One retry on a fresh connection: the exchange may have been deleted under us
            # (auto-delete) or the idle connection dropped.
            for attempt in (1, 2):
                try:
                    if self._link is None:
                        self._link = connect(self.url, self.options)
                    declare_exchange(self._link, exchange)
                    self._link.publish_unconfirmed([(message, exchange, routing_key)])
                    return
                except ERRORS as exc:
                    self._drop()
                    if attempt == 2:
                        raise ConnectionFailed(f"cannot broadcast on exchange {exchange!r} "
                                               f"({exc}); check that RabbitMQ runs") from None

    def _drop(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None

    def close(self) -> None:
        with self._lock:
            self._drop()


class AmqpSubscription(Subscription):
    def __init__(self, url: str, options: dict[str, Any], exchange: str, pattern: str) -> None:
        kind, _, _ = exchange_kind(exchange)
        if kind == "direct" and any(w in ("*", "#") for w in pattern.split(".")):
            raise ConfigurationError(f"exchange {exchange!r} is a direct exchange: it routes "
                                     f"exact routing keys only, so subscribe with one, not "
                                     f"the pattern {pattern!r}")
        self.url = url
        self.options = options
        self.exchange = exchange
        self.pattern = pattern
        self._binding = "" if kind == "fanout" else pattern
        self._filter = kind == "fanout" and pattern != "#"
        self._got: deque[tuple[str, Envelope]] = deque()
        self._link: Link | None = None
        self._closed = False
        self._connect()  # now: what is broadcast once this returns must arrive

    def _connect(self) -> Link:
        if self._link is None:
            link = connect(self.url, self.options)
            try:
                self._listen(link)
            except BaseException:
                link.close()
                raise
            self._link = link
        return self._link

    def _listen(self, link: Link) -> None:
        queue = f"{self.exchange}.{uuid.uuid4().hex}"
        for attempt in range(3):
            channel = link.channel()
            declare_exchange(link, self.exchange)
            channel.queue_declare(queue, durable=False, exclusive=True, auto_delete=True)
            try:
                channel.queue_bind(queue, self.exchange, self._binding)
            except NotFound:
                # The last subscriber of an auto-delete exchange left between our declare and
                # our bind, and RabbitMQ deleted the exchange: declare it again.
                link.declared.discard(self.exchange)
                if attempt == 2:
                    raise
                continue
            channel.basic_consume(queue, callback=self._on_message, no_ack=True)
            return

    def _on_message(self, message: Any) -> None:
        key = str((message.delivery_info or {}).get("routing_key") or "")
        if self._filter and not topic_matches(self.pattern, key):
            return
        envelope, _ = from_message(message)
        self._got.append((key, envelope))

    def get(self, timeout: float) -> list[tuple[str, Envelope]]:
        deadline = time.monotonic() + max(0.0, timeout)
        while not self._closed and not self._got:
            left = deadline - time.monotonic()
            try:
                link = self._connect()
                interval = link.heartbeat
                link.drain(max(0.0, min(left, interval / 4 if interval else left)))
                link.keep_alive()  # what else arrived, and our heartbeat when one is due
            except _LOST as exc:
                log.warning("subscription to exchange %r lost its connection (%s); "
                            "subscribing again", self.exchange, exc)
                self._drop()
                time.sleep(max(0.0, min(RECONNECT_PAUSE, deadline - time.monotonic())))
            if time.monotonic() >= deadline:
                break
        got = list(self._got)
        self._got.clear()
        return got

    def _drop(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None

    def close(self) -> None:
        self._closed = True
        self._drop()
