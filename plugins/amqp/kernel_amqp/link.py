"""One live connection to RabbitMQ and what hangs off it.

A `Link` owns a py-amqp connection (opened through kombu, which parses the URL and retries the
connect), a publisher channel in confirm mode, an admin channel for declarations and
inspection, and one consumer channel per consumed queue. Nothing here locks: the transport
calls a Link only while holding its one lock. When the connection fails the transport drops the
Link whole and builds a new one, which declares everything again.
"""

from __future__ import annotations

import itertools
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import amqp
from amqp.exceptions import ChannelError, NotFound, PreconditionFailed
from kombu import connection as kombu_connection

from kernel.errors import ConnectionFailed

T = TypeVar("T")
_generations = itertools.count(1)
#: kombu's Connection (its methods carry no annotations).
Connection: Any = kombu_connection.Connection
#: the highest prefetch_count AMQP can carry (a short).
MAX_PREFETCH = 65535


@dataclass
class Consumer:
    """A consumer on its own channel, so each queue's prefetch is its own (queue preference
    holds: a busy queue cannot fill the buffer another queue's messages need)."""

    queue: str
    channel: Any
    tag: str = ""
    prefetch: int = 0
    buffer: deque[Any] = field(default_factory=deque)
    #: delivery tags handed to the caller and not yet settled.
    given_out: set[int] = field(default_factory=set)


class Link:
    def __init__(self, conn: Any, confirm_timeout: float) -> None:
        self.kombu = conn
        self.raw: Any = conn.connection
        self.generation = next(_generations)
        self.confirm_timeout = confirm_timeout
        self.consumers: dict[str, Consumer] = {}
        self.by_channel: dict[int, Consumer] = {}
        self.declared: set[str] = set()
        self._admin: Any = None
        self.publisher = self.channel()
        self.publisher.confirm_select()
        self._published = 0
        self._pending: set[int] = set()
        self._nacked = 0
        self._returned: list[str] = []
        self.publisher.events["basic_ack"].add(self._on_ack)
        self.publisher.events["basic_nack"].add(self._on_nack)
        self.publisher.events["basic_return"].add(self._on_return)

    # ------------------------------------------------------------------ channels

    def channel(self) -> Any:
        channel = self.raw.channel()
        channel.auto_decode = False  # bodies stay bytes, whatever their content encoding
        return channel

    @property
    def admin(self) -> Any:
        if self._admin is None or not self._admin.is_open:
            self._admin = self.channel()
        return self._admin

    def quietly(self, operation: Callable[[Any], T]) -> T | None:
        """Run `operation` on the admin channel; None when the object does not exist (RabbitMQ
        closes the channel then, so the next call opens a fresh one)."""
        try:
            return operation(self.admin)
        except NotFound:
            self._admin = None
            return None

    def declare_queue(self, queue: str, arguments: dict[str, Any]) -> bool:
        """Declare `queue` durable with `arguments`; False when it exists with other arguments
        (declared by someone else), in which case it is used as it is."""
        try:
            self.admin.queue_declare(queue, durable=True, auto_delete=False,
                                     arguments=arguments)
            return True
        except PreconditionFailed:
            self._admin = None
            self.admin.queue_declare(queue, passive=True)
            return False

    def message_count(self, queue: str) -> int | None:
        declared = self.quietly(lambda ch: ch.queue_declare(queue, passive=True))
        return None if declared is None else int(declared.message_count)

    # ------------------------------------------------------------------ publish

    def _on_ack(self, tag: int, multiple: bool) -> None:
        self._settle(tag, multiple)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        self._nacked += len(self._settle(tag, multiple))

    def _on_return(self, exc: Exception, exchange: str, routing_key: str,
                   message: Any) -> None:
        self._returned.append(f"{exchange or '(default)'}/{routing_key}: {exc}")

    def _settle(self, tag: int, multiple: bool) -> set[int]:
        done = {t for t in self._pending if t <= tag} if multiple else {tag} & self._pending
        self._pending -= done
        return done

    def publish(self, batch: list[tuple[amqp.Message, str, str]]) -> None:
        """Publish (message, exchange, routing key) triples and return once RabbitMQ confirmed
        every one; mandatory, so a message no queue takes is an error, not a silent drop."""
        self._nacked, self._returned = 0, []
        self._pending.clear()  # a late confirm of an abandoned batch changes nothing
        for message, exchange, routing_key in batch:
            self.publisher.basic_publish(message, exchange, routing_key, mandatory=True)
            self._published += 1
            self._pending.add(self._published)
        deadline = time.monotonic() + self.confirm_timeout
        while self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConnectionFailed(
                    f"RabbitMQ did not confirm {len(self._pending)} published message(s) within "
                    f"{self.confirm_timeout} s (transport option confirm_timeout); check the "
                    f"broker's health (memory and disk alarms block publishers)")
            self.drain(left)
        if self._nacked or self._returned:
            self.declared.clear()  # someone deleted a queue: declare again on the next call
            raise ConnectionFailed(
                f"RabbitMQ refused {self._nacked + len(self._returned)} of {len(batch)} "
                f"message(s) ({'; '.join(self._returned) or 'negative confirm'}); check that "
                f"the queues exist and the broker has room")

    # ------------------------------------------------------------------ consume

    def consumer(self, queue: str) -> Consumer:
        consumer = self.consumers.get(queue)
        if consumer is None:
            consumer = Consumer(queue, self.channel())
            self.consumers[queue] = consumer
            self.by_channel[consumer.channel.channel_id] = consumer
        return consumer

    def subscribe(self, consumer: Consumer, room: int) -> None:
        """Let the broker push up to `room` more messages than the consumer holds: a
        channel-wide prefetch (RabbitMQ applies a change of it at once)."""
        want = max(1, min(MAX_PREFETCH, len(consumer.given_out) + room))
        if want != consumer.prefetch:
            consumer.channel.basic_qos(0, want, True)
            consumer.prefetch = want
        if not consumer.tag:
            consumer.tag = consumer.channel.basic_consume(
                consumer.queue, callback=consumer.buffer.append,
                on_cancel=lambda tag: self._cancelled(consumer))

    def _cancelled(self, consumer: Consumer) -> None:
        """The broker cancelled a consumer (its queue was deleted): the next fetch declares
        the queue and subscribes again."""
        consumer.tag = ""
        self.declared.discard(consumer.queue)

    def forget(self, queue: str) -> None:
        """Stop consuming `queue` (its unsettled deliveries go back to the broker)."""
        consumer = self.consumers.pop(queue, None)
        if consumer is not None:
            self.by_channel.pop(consumer.channel.channel_id, None)
            consumer.channel.close()
        self.declared.discard(queue)

    def drain(self, timeout: float) -> bool:
        """Handle what the broker sends for up to `timeout` seconds; True if anything came."""
        try:
            self.raw.drain_events(timeout=max(timeout, 0.001))
        except socket.timeout:
            return False
        return True

    def close(self) -> None:
        try:
            self.kombu.close()
        except Exception:  # noqa: BLE001 - the connection may already be gone; nothing to keep
            pass


def connect(url: str, options: dict[str, Any]) -> Link:
    """Open a Link, retrying the connect a few times (transport option ``max_retries``)."""
    extra = {"ssl": options["ssl"]} if options.get("ssl") else {}
    # No heartbeats: py-amqp only answers them while someone drains the socket, and a worker
    # busy with long tasks may not fetch for a long time. TCP keepalive finds dead peers.
    conn: Any = Connection(url, connect_timeout=float(options.get("connect_timeout", 4.0)),
                      heartbeat=0, **extra)
    try:
        conn.ensure_connection(max_retries=int(options.get("max_retries", 3)),
                               interval_start=0.2, interval_step=0.5, interval_max=2.0)
        return Link(conn, float(options.get("confirm_timeout", 30.0)))
    except (*conn.connection_errors, ChannelError) as exc:
        conn.release()
        raise ConnectionFailed(f"cannot connect to RabbitMQ at {conn.as_uri()} ({exc}); check "
                               f"that it runs and the URL, user and vhost are right") from None
