"""One live connection to RabbitMQ and what hangs off it.

A `Link` owns a py-amqp connection (opened through kombu, which parses the URL and retries the
connect), a publisher channel in confirm mode, an admin channel for declarations and
inspection, and one consumer channel per consumed queue. Nothing here locks: the transport
calls a Link only while holding its one lock. When the connection fails the transport drops the
Link whole and builds a new one, which declares everything again.

Heartbeats: the connection negotiates the ``heartbeat`` transport option (60 s unless set; 0
turns them off) and `KeepAlive`, a thread of the Link's owner, calls `Link.keep_alive` four
times per interval, so a worker whose every slot runs a long task (and which therefore does not
fetch) still answers RabbitMQ and still notices a broker that went silent.
"""

from __future__ import annotations

import itertools
import select
import socket
import ssl
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import amqp
from amqp.exceptions import ChannelError, NotFound, PreconditionFailed
from kombu import connection as kombu_connection

from kernel.plugin import ConnectionFailed, OptionReader
from kernel_amqp.tls import handshake_failed, ssl_option

T = TypeVar("T")
_generations = itertools.count(1)
#: kombu's Connection (its methods carry no annotations).
Connection: Any = kombu_connection.Connection
#: errors after which a connection is replaced. Channel errors count: RabbitMQ closes a
#: consumer's channel when it holds a delivery past ``consumer_timeout``, and a fresh
#: connection is the one state that is sure to consume again.
ERRORS: tuple[type[BaseException], ...] = (
    *amqp.Connection.connection_errors, *amqp.Connection.recoverable_connection_errors,
    ChannelError)
#: the highest prefetch_count AMQP can carry (a short).
MAX_PREFETCH = 65535
#: seconds between heartbeats unless the transport option ``heartbeat`` says otherwise
#: (RabbitMQ's own default; the lower of the client's and the server's value wins).
DEFAULT_HEARTBEAT = 60.0


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
        #: False for quorum queues: they refuse a channel-wide prefetch.
        self.channel_qos = True
        self._admin: Any = None
        self._unconfirmed: Any = None
        self.publisher = self.channel()
        self.publisher.confirm_select()
        self._published = 0
        self._confirm_seq = 0  # the confirming channel's own count: RabbitMQ's ack numbers
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

    def reset_admin(self) -> None:
        """RabbitMQ closed the admin channel over an error: the next call opens another."""
        self._admin = None

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

    @property
    def published(self) -> int:
        """How many messages went out on this connection (a failed write not counted)."""
        return self._published

    def publish(self, batch: list[tuple[amqp.Message, str, str]], *,
                mandatory: bool = True) -> list[str]:
        """Publish (message, exchange, routing key) triples and return once RabbitMQ confirmed
        every one. Returns where the messages no queue took were going (``exchange/key:
        reason``): with `mandatory` RabbitMQ hands those back instead of dropping them silently.
        Raises `ConnectionFailed` when RabbitMQ refuses a message or does not confirm in time."""
        self._nacked, self._returned = 0, []
        self._pending.clear()  # a late confirm of an abandoned batch changes nothing
        for message, exchange, routing_key in batch:
            self.publisher.basic_publish(message, exchange, routing_key, mandatory=mandatory)
            self._published += 1
            self._confirm_seq += 1
            self._pending.add(self._confirm_seq)
        deadline = time.monotonic() + self.confirm_timeout
        while self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConnectionFailed(
                    f"RabbitMQ did not confirm {len(self._pending)} published message(s) within "
                    f"{self.confirm_timeout} s (transport option confirm_timeout); check the "
                    f"broker's health (memory and disk alarms block publishers)")
            self.drain(left)
        if self._nacked:
            raise ConnectionFailed(
                f"RabbitMQ refused {self._nacked} of {len(batch)} message(s) (negative "
                f"confirm); check that the broker has room (queue length limits, disk)")
        return self._returned

    def publish_unconfirmed(self, batch: list[tuple[amqp.Message, str, str]]) -> None:
        """Publish without waiting for RabbitMQ, on a channel of its own without confirms
        (the confirming channel's acks would pile up unread), not mandatory (nothing would
        read what RabbitMQ hands back)."""
        if self._unconfirmed is None or not self._unconfirmed.is_open:
            self._unconfirmed = self.channel()
        for message, exchange, routing_key in batch:
            self._unconfirmed.basic_publish(message, exchange, routing_key)
            self._published += 1

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
        channel-wide prefetch (RabbitMQ applies a change of it at once), or on quorum queues,
        which know no channel-wide one, the consumer's own (applied by consuming anew).

        The consumer holds finished tasks until their acks go out (a few milliseconds), so
        while short tasks stream through, what it needs swings with every batch of acks. A
        prefetch at most half again above the need stays, rather than costing a round trip
        (or, on quorum queues, a new consumer) per fetch; the few extra messages it lets in
        are the next fetch's. A need of one (long tasks, one slot) is met exactly."""
        want = max(1, min(MAX_PREFETCH, len(consumer.given_out) + room))
        if want > consumer.prefetch or want + want // 2 < consumer.prefetch:
            consumer.channel.basic_qos(0, want, self.channel_qos)
            if consumer.tag and not self.channel_qos:
                consumer.channel.basic_cancel(consumer.tag)  # its deliveries stay ours
                consumer.tag = ""
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
        """Handle what the broker sends for up to `timeout` seconds; True if anything came.
        With `timeout` 0 only what already arrived, without waiting (py-amqp's shortest wait
        is a millisecond, which a worker's fetch and a client's wait would pay each time)."""
        if timeout <= 0 and not self.wait_readable(0):
            return False
        try:
            self.raw.drain_events(timeout=max(timeout, 0.001))
        except socket.timeout:
            return False
        return True

    def wait_readable(self, timeout: float) -> bool:
        """Whether the broker sent something, waiting up to `timeout` seconds for it. Safe
        without the owner's lock (it reads nothing); False if the connection was closed
        meanwhile."""
        sock = self.raw.sock
        # TLS may hold decrypted bytes that select cannot see.
        pending = getattr(sock, "pending", None)
        if pending is not None and pending():
            return True
        try:
            return bool(select.select([sock], [], [], timeout)[0])
        except (OSError, TypeError, ValueError):
            return False  # closed by another thread: the next call reconnects

    def catch_up(self) -> None:
        """Handle what RabbitMQ sent meanwhile, without waiting: raises if it hung up (a
        restart closes every connection), so a caller can reconnect before it relies on
        this one."""
        while self.drain(0):
            pass

    def keep_alive(self) -> None:
        """Read what RabbitMQ sent (its heartbeats among it) and send a heartbeat when one is
        due; raises when RabbitMQ has been silent for two intervals."""
        self.catch_up()
        self.raw.heartbeat_tick()

    @property
    def heartbeat(self) -> float:
        """The negotiated heartbeat interval in seconds (0: none)."""
        return float(self.raw.heartbeat or 0)

    def close(self) -> None:
        try:
            self.kombu.close()
        except Exception:  # noqa: BLE001 - the connection may already be gone; nothing to keep
            pass


class HoldsLink:
    """The heartbeat side of an object that holds one `Link` (None while disconnected) under
    its `_lock`: what a `KeepAlive` thread calls. `_lost` says what to do when RabbitMQ is gone."""

    _link: Link | None
    _lock: threading.RLock

    def _heartbeat(self) -> float | None:
        link = self._link
        return link.heartbeat if link is not None else None

    def _keep_alive(self) -> None:
        with self._lock:
            if self._link is None:
                return
            try:
                self._link.keep_alive()
            except ERRORS as exc:
                self._lost(exc)

    def _lost(self, exc: BaseException) -> None:
        raise NotImplementedError


class KeepAlive:
    """A daemon thread calling `tick` four times per heartbeat interval of the owner's current
    Link (`interval` returns it; 0 or None: nothing to do, look again in a second). `tick` takes
    the owner's lock and handles its own errors. It holds its owner weakly: an owner that is
    dropped without `close` does not live on in this thread."""

    def __init__(self, name: str, interval: Callable[[], float | None],
                 tick: Callable[[], None]) -> None:
        self._interval = weakref.WeakMethod(interval)
        self._tick = weakref.WeakMethod(tick)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            interval_of = self._interval()
            interval = interval_of() if interval_of is not None else None
            del interval_of
            if self._stop.wait(interval / 4 if interval else 1.0):
                return
            tick = self._tick()
            if tick is None:
                return  # the owner is gone
            if interval:
                tick()
            del tick

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


def heartbeat_option(options: dict[str, Any]) -> float:
    """Seconds between heartbeats (0 turns them off)."""
    return OptionReader(options, "RabbitMQ transport").number("heartbeat", DEFAULT_HEARTBEAT,
                                                              minimum=0)


def connect(url: str, options: dict[str, Any]) -> Link:
    """Open a Link, retrying the connect a few times (transport option ``max_retries``) within
    ``connection_timeout`` seconds in all, but not after the broker's certificate was refused:
    that fails the same way every time."""
    tls = ssl_option(options)
    reader = OptionReader(options, "RabbitMQ transport")
    total = reader.number("connection_timeout", 4.0, positive=True)
    # An attempt waits for the TCP connect and then for the handshake, each up to
    # connect_timeout: by default two attempts fit in the total.
    attempt = reader.number("connect_timeout", total / 4, positive=True)
    conn: Any = Connection(url, connect_timeout=attempt, heartbeat=heartbeat_option(options),
                           **({"ssl": tls} if tls else {}))
    deadline = time.monotonic() + total

    def give_up(exc: BaseException, interval: float) -> None:
        # Not after the broker's certificate was refused, nor when the pause and the next
        # attempt would end past the deadline (kombu's own timeout does not count them).
        if (isinstance(exc, ssl.SSLCertVerificationError)
                or time.monotonic() + interval + 2 * attempt > deadline):
            raise exc

    try:
        # Not as kombu's own errors: ERRORS are py-amqp's and the socket's.
        conn.ensure_connection(max_retries=reader.integer("max_retries", 3, minimum=0),
                               errback=give_up, reraise_as_library_errors=False,
                               interval_start=0.2, interval_step=0.5, interval_max=2.0)
        return Link(conn, reader.number("confirm_timeout", 30.0, positive=True))
    except ssl.SSLError as exc:
        conn.release()
        raise handshake_failed(exc, conn.as_uri()) from None
    except ERRORS as exc:
        conn.release()
        raise ConnectionFailed(f"cannot connect to RabbitMQ at {conn.as_uri()} within {total:g} "
                               f"s ({exc}); check that it runs and the URL, user and vhost are "
                               f"right, or allow longer (broker_connection_timeout)") from None
