"""The AMQP transport: RabbitMQ through kombu and py-amqp.

Threads: one lock guards the connection (py-amqp connections are not thread-safe). `fetch`
never holds it for longer than a 50 ms slice of its wait, so an `ack` from the worker's ack
thread goes out within that; every ack is sent on the channel that received the message.

Reliability: publishes wait for publisher confirms; messages are persistent on durable queues.
A fetched message stays unacked with this connection until it is settled; if the connection
dies, RabbitMQ gives it to another consumer with the ``redelivered`` flag. A connection (or
channel) RabbitMQ closed meanwhile is noticed before a call relies on it and replaced at once;
an error in the middle of a call drops the connection and raises `ConnectionFailed`, and the
next call connects again. Either way everything is declared again, so a broker restart costs a
worker at most a few failed fetches while RabbitMQ is away, never its consumers. Deliveries made
on a dropped connection are settled by the broker (it requeued them), so settling them
afterwards is a no-op. Heartbeats (transport option ``heartbeat``) are sent by a thread of
their own (`kernel_amqp.link.KeepAlive`), so a worker that does not fetch for a long time stays
connected.

No leases: RabbitMQ redelivers only when a channel closes. It closes a channel that holds a
delivery unacked for longer than ``consumer_timeout`` (30 minutes by default), so tasks that
run longer need a larger ``consumer_timeout`` in rabbitmq.conf.

Delivery counts on classic queues: RabbitMQ only says whether a message was delivered before
(the ``redelivered`` flag), not how often. Giving a message back (`reject` with requeue,
`release`) therefore publishes a confirmed copy carrying the count so far (header
``x-kernel-deliveries``) and acks the original; and a message RabbitMQ redelivers by itself
(its consumer's connection died, e.g. a worker killed by the task it ran) is not handed out but
given back the same way, counted. So every count is exact and the delivery cap
(``task_max_deliveries``) stops a message that kills its worker each time. Copies go to the back
of their priority in the queue. Quorum queues (transport option ``queue_type: quorum``) count
deliveries themselves (``x-delivery-count``); their messages are handed out as they come.

Dead letters: `reject(requeue=False)` publishes a confirmed copy to ``<queue>.dead`` with the
reason in header ``x-kernel-reason``, then acks the original. `dead_letters` browses that queue
on a channel of its own: it gets up to `limit` messages without acking and closes the channel,
which puts them back where they were; while it reads, those messages are invisible to other readers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import dataclasses

import amqp
from amqp.exceptions import ChannelError, PreconditionFailed

from kernel.plugin import ConfigurationError, ConnectionFailed, Envelope, OptionReader, Options
from kernel.interfaces.transport import Binding, Delivery, Outgoing, Subscription, Transport
from kernel_amqp import topology as topo
from kernel_amqp.broadcast import AmqpSubscription, Broadcaster
from kernel_amqp.link import Consumer, ERRORS, HoldsLink, KeepAlive, Link, connect, heartbeat_option
from kernel_amqp.plugin import CAPABILITIES
from kernel_amqp.tls import ssl_option
from kernel_amqp.wire import DEAD_REASON, PREVIOUS_DELIVERIES, from_message, to_message

log = logging.getLogger(__name__)
#: the longest a fetch holds the connection lock while it waits for messages.
SLICE = 0.05

Tag = tuple[int, int, int]  # (link generation, channel id, delivery tag)


class AmqpTransport(HoldsLink, Transport):
    """``amqp://user:password@host:5672/vhost`` (also ``amqps://``, ``pyamqp://``).

    Options: ``max_priority`` (10; 0 declares queues without priorities, as Celery does unless
    ``task_queue_max_priority`` is set), ``queue_type`` (``classic``, or ``quorum``: replicated
    queues that count deliveries themselves but have no priorities), ``heartbeat`` (60 s; 0
    turns heartbeats off), ``confirm_publish`` (True: a task's publish returns once RabbitMQ
    confirmed it holds the message; False, Celery's default: once the bytes are written, faster
    and lost without a word if the broker fails before it has them; kernel's own copies, the
    requeued and the dead-lettered, are always confirmed), ``confirm_timeout`` (30 s),
    ``connection_timeout`` (4 s,
    the app's ``broker_connection_timeout``: the most a call spends connecting, attempts and
    pauses included), ``connect_timeout`` (a quarter of that: one attempt's TCP connect,
    and then its handshake), ``max_retries`` (3 connection attempts per call), ``ssl`` (TLS:
    True or a mapping of ``ca_certs``, ``certfile``, ``keyfile``, ``cert_reqs``,
    ``server_hostname``, ``ciphers``; see `kernel_amqp.tls`).
    """

    capabilities = CAPABILITIES

    def __init__(self, url: str, options: Options | None = None) -> None:
        self.url = url
        self.options = dict(options or {})
        # Bad values are errors now, not at the first connect.
        heartbeat_option(self.options)
        ssl_option(self.options)
        reader = OptionReader(self.options, "RabbitMQ transport")
        queue_type = self.options.get("queue_type", "classic")
        if queue_type not in topo.QUEUE_TYPES:
            raise ConfigurationError(f"transport option queue_type must be one of "
                                     f"{', '.join(topo.QUEUE_TYPES)}, got {queue_type!r}")
        max_priority = reader.integer("max_priority", topo.DEFAULT_MAX_PRIORITY, minimum=0)
        self.confirm_publish = reader.boolean("confirm_publish", True)
        if queue_type == "quorum":
            if "max_priority" in self.options and max_priority:
                raise ConfigurationError("quorum queues have no priorities (RabbitMQ refuses "
                                         "x-max-priority on them): drop transport option "
                                         "max_priority or use queue_type classic")
            max_priority = 0
            self.capabilities = dataclasses.replace(CAPABILITIES, priorities=False)
        self.queue_arguments = topo.queue_arguments(max_priority, queue_type)
        self._lock = threading.RLock()
        #: ``task_queues``' bindings, by queue and by exchange (`declare_bindings`).
        self._bindings: dict[str, list[Binding]] = {}
        self._exchanges: dict[str, list[Binding]] = {}
        self._link: Link | None = None
        self._keepalive: KeepAlive | None = None
        self._broadcaster = Broadcaster(url, self.options)

    def __repr__(self) -> str:
        return f"<AmqpTransport {self.url.split('@')[-1]}>"

    # ------------------------------------------------------------------ connection

    def _connected(self) -> Link:
        if self._link is not None:
            try:
                self._link.catch_up()
            except ERRORS as exc:
                # RabbitMQ closed it (a restart) or one of its channels (consumer_timeout): a
                # fresh connection now, not an error for the caller; RabbitMQ requeued what
                # the old one held.
                log.warning("RabbitMQ closed the connection or a channel (%s); connecting "
                            "again", exc)
                self._drop()
        if self._link is None:
            self._link = connect(self.url, self.options)
            self._link.channel_qos = "x-queue-type" not in self.queue_arguments
            if self._keepalive is None:
                self._keepalive = KeepAlive("kernel-amqp-heartbeat", self._heartbeat,
                                            self._keep_alive)
        return self._link

    def _lost(self, exc: BaseException) -> None:
        log.warning("%s", self._failed(exc, "exchanging heartbeats"))

    def _drop(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None

    def _failed(self, exc: BaseException, doing: str) -> ConnectionFailed:
        """Drop the broken connection; the next call opens a new one."""
        self._drop()
        return ConnectionFailed(f"lost the connection to RabbitMQ while {doing} ({exc}); the "
                                f"next call reconnects")

    # ------------------------------------------------------------------ declare

    def declare_bindings(self, bindings: Sequence[Binding]) -> None:
        """Remember ``task_queues``' exchanges and bindings; each is declared on RabbitMQ with
        its queue, or before the first publish to its exchange (and again after a reconnect)."""
        with self._lock:
            for binding in bindings:
                if binding not in self._bindings.get(binding.queue, []):
                    self._bindings.setdefault(binding.queue, []).append(binding)
                    self._exchanges.setdefault(binding.exchange, []).append(binding)
            if self._link is not None:
                self._link.declared.clear()

    def _declare(self, link: Link, queue: str) -> None:
        if queue in link.declared:
            return
        bindings = self._bindings.get(queue) or [Binding(queue, topo.exchange_for(queue),
                                                         "direct", queue)]
        try:
            for binding in bindings:
                self._declare_exchange(link, binding.exchange, binding.exchange_type, queue)
            declared = link.declare_queue(queue, self.queue_arguments)
        except ChannelError as exc:
            link.reset_admin()
            raise ConfigurationError(
                f"RabbitMQ refused to declare the queue {queue!r} ({exc}); queue names starting "
                f"with 'amq.' are reserved and a name has at most 255 bytes: rename the queue "
                f"(in task_routes, task_queues, queue= or -Q)") from None
        if not declared:
            log.warning("queue %r exists with other arguments than %s (declared by another "
                        "client); using it as it is, so priorities may not apply", queue,
                        self.queue_arguments)
        for binding in bindings:
            link.admin.queue_bind(queue, binding.exchange, binding.routing_key)
        if topo.exchange_for(queue) not in {b.exchange for b in bindings}:
            # Give-backs and delays address a queue through its own direct exchange.
            self._declare_exchange(link, topo.exchange_for(queue), "direct", queue)
            link.admin.queue_bind(queue, topo.exchange_for(queue), queue)
        link.declared.add(queue)

    def _declare_exchange(self, link: Link, exchange: str, kind: str, queue: str) -> None:
        mark = f"exchange {exchange}"
        if mark in link.declared:
            return
        try:
            link.admin.exchange_declare(exchange, kind, durable=True, auto_delete=False)
        except PreconditionFailed:
            link.reset_admin()
            raise ConfigurationError(
                f"RabbitMQ has an exchange {exchange!r} that is not a durable {kind} exchange; "
                f"queue {queue!r} needs one of that name (as Celery declares it): delete or "
                f"rename the other one, or change its type in task_queues") from None
        link.declared.add(mark)

    def _declare_routes(self, link: Link, exchange: str) -> None:
        """Before a publish to `exchange`: it and every queue ``task_queues`` binds to it."""
        for binding in self._exchanges.get(exchange, []):
            self._declare(link, binding.queue)

    def _declare_delays(self, link: Link, queue: str, levels: list[int]) -> None:
        if "kernel.delay" not in link.declared:
            for level in range(topo.DELAY_LEVELS):
                link.admin.exchange_declare(topo.delay_exchange(level), "topic", durable=True,
                                            auto_delete=False)
            for level in range(1, topo.DELAY_LEVELS):
                link.admin.exchange_bind(topo.delay_exchange(level - 1),
                                         topo.delay_exchange(level),
                                         topo.pass_down_binding(level))
            link.declared.add("kernel.delay")
        arrival = f"{queue} arrival"
        if arrival not in link.declared:
            link.admin.queue_bind(queue, topo.delay_exchange(0), topo.arrival_binding(queue))
            link.declared.add(arrival)
        for level in levels:
            name = topo.delay_queue(queue, level)
            if name not in link.declared:
                link.admin.queue_declare(name, durable=True, auto_delete=False,
                                         arguments=topo.delay_queue_arguments(queue, level))
                link.admin.queue_bind(name, topo.delay_exchange(level),
                                      topo.delay_binding(queue, level))
                link.declared.add(name)

    # ------------------------------------------------------------------ publish

    def publish(self, messages: Sequence[Outgoing]) -> None:
        """Delayed messages (``not_before``) go through the delay cascade (see
        `kernel_amqp.topology`), due to the second rounded up.

        A connection found broken before the first message went out (RabbitMQ restarted since
        the last call) is replaced and the batch sent on the new one; one that breaks later
        raises: some messages may have reached the broker, and sending them again could
        deliver them twice. RabbitMQ's confirms say which did, so a publish that raised
        after it was connected may still have delivered part of the batch."""
        if not messages:
            return
        for attempt in (1, 2):
            with self._lock:
                link = self._connected()
                before = link.published
                try:
                    self._publish_on(link, messages)
                    return
                except ConnectionFailed:
                    # Again only if the connection was dropped before any message left.
                    if attempt == 2 or self._link is not None or link.published != before:
                        raise
                    log.warning("the connection to RabbitMQ was broken before the publish; "
                                "publishing on a new one")

    def _publish_on(self, link: Link, messages: Sequence[Outgoing]) -> None:
        now = time.time()
        try:
            batch = []
            for m in messages:
                self._declare(link, m.queue)
                priority = self._priority(m.priority or m.envelope.properties.get("priority"))
                message = to_message(m.envelope, priority)
                delay = topo.delay_seconds(m.not_before, now) if m.not_before else 0
                if delay:
                    levels = topo.delay_bits(delay)
                    self._declare_delays(link, m.queue, levels)
                    batch.append((message, topo.delay_exchange(levels[-1]),
                                  topo.delay_routing_key(m.queue, delay)))
                elif m.exchange is not None:
                    self._declare_routes(link, m.exchange)
                    batch.append((message, m.exchange, m.routing_key or m.queue))
                else:
                    batch.append((message, topo.exchange_for(m.queue), m.queue))
            if self.confirm_publish:
                self._send(link, batch)
            else:
                link.publish_unconfirmed(batch)
        except ChannelError as exc:
            # The broker closed the publishing channel (e.g. an exchange was deleted under
            # us): start afresh, declarations included, on the next call.
            self._failed(exc, "publishing")
            raise ConnectionFailed(f"RabbitMQ refused the publish ({exc}); the next call "
                                   f"declares the queues again") from None
        except ERRORS as exc:
            raise self._failed(exc, "publishing") from None

    @staticmethod
    def _send(link: Link, batch: list[tuple[amqp.Message, str, str]]) -> None:
        """Publish confirmed; a message no queue took is an error, not a silent drop."""
        returned = link.publish(batch)
        if returned:
            link.declared.clear()  # someone deleted a queue: declare again on the next call
            raise ConnectionFailed(
                f"RabbitMQ refused {len(returned)} of {len(batch)} message(s) "
                f"({'; '.join(returned)}); check that the queues exist")

    @staticmethod
    def _priority(value: Any) -> int:
        try:
            return max(0, min(topo.KERNEL_MAX_PRIORITY, int(value or 0)))
        except (TypeError, ValueError):
            return 0

    def _copy(self, delivery: Delivery, **bookkeeping: Any) -> amqp.Message:
        priority = self._priority(delivery.envelope.properties.get("priority"))
        return to_message(delivery.envelope, priority, **bookkeeping)

    def _publish_copy(self, link: Link, delivery: Delivery, exchange: str, routing_key: str,
                      **bookkeeping: Any) -> None:
        """Publish a confirmed copy of a delivered message, then ack the original."""
        self._send(link, [(self._copy(delivery, **bookkeeping), exchange, routing_key)])
        self._settle(link, [delivery])

    # ------------------------------------------------------------------ consume

    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Delivery]:
        if limit <= 0 or not queues:
            return []
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            with self._lock:
                link = self._connected()
                try:
                    for queue in queues:
                        self._declare(link, queue)
                        link.subscribe(link.consumer(queue), limit)
                    # What already arrived, from every queue, before choosing by preference.
                    link.catch_up()
                    taken = self._take(link, queues, limit)
                except ERRORS as exc:
                    raise self._failed(exc, "fetching") from None
            left = deadline - time.monotonic()
            if taken or left <= 0:
                return taken
            # Wait for the broker without the lock: the worker's acks (which open RabbitMQ's
            # prefetch window) and publishes go out meanwhile instead of waiting for the slice.
            link.wait_readable(min(left, SLICE))

    def _take(self, link: Link, queues: Sequence[str], limit: int) -> list[Delivery]:
        taken: list[Delivery] = []
        uncounted: list[Delivery] = []
        for queue in queues:
            consumer = link.consumers[queue]
            while consumer.buffer and len(taken) < limit:
                delivery, exact = self._delivery(link, consumer, consumer.buffer.popleft())
                (taken if exact else uncounted).append(delivery)
        if uncounted:
            self._recount(link, uncounted)
        return taken

    @staticmethod
    def _delivery(link: Link, consumer: Consumer, message: Any) -> tuple[Delivery, bool]:
        """The Delivery, and whether its count is exact (not for a message a classic queue
        redelivered by itself: it only says "before", not how often)."""
        envelope, bookkeeping = from_message(message)
        info = message.delivery_info
        tag: Tag = (link.generation, consumer.channel.channel_id, info["delivery_tag"])
        consumer.given_out.add(info["delivery_tag"])
        count = int(bookkeeping.get(PREVIOUS_DELIVERIES) or 0)
        if "x-delivery-count" in bookkeeping:  # quorum queues count returns themselves
            count += int(bookkeeping["x-delivery-count"]) + 1
            return Delivery(tag, consumer.queue, envelope, count), True
        redelivered = bool(info.get("redelivered"))
        count += 2 if redelivered else 1
        return Delivery(tag, consumer.queue, envelope, count), not redelivered

    def _recount(self, link: Link, deliveries: list[Delivery]) -> None:
        """Give back messages a classic queue redelivered by itself as confirmed copies that
        carry their count (the delivery that ended without an ack included), then ack them:
        the copies come back with exact counts."""
        self._send(link, [(self._copy(d, **{PREVIOUS_DELIVERIES: d.delivery_count - 1}),
                           topo.exchange_for(d.queue), d.queue) for d in deliveries])
        self._settle(link, deliveries)

    # ------------------------------------------------------------------ settle

    def _live(self, link: Link, delivery: Delivery) -> Consumer | None:
        """The consumer still holding `delivery`, or None if it was settled or its connection
        is gone (then RabbitMQ has requeued the message itself)."""
        generation, channel_id, tag = delivery.tag
        consumer = link.by_channel.get(channel_id)
        if generation != link.generation or consumer is None or tag not in consumer.given_out:
            return None
        return consumer

    def _settle(self, link: Link, deliveries: Sequence[Delivery],
                requeue: bool | None = None) -> None:
        by_channel: dict[int, tuple[Consumer, set[int]]] = {}
        for delivery in deliveries:
            consumer = self._live(link, delivery)
            if consumer is not None:  # a set: the same delivery twice is settled once
                by_channel.setdefault(delivery.tag[1], (consumer, set()))[1].add(delivery.tag[2])
        for consumer, tags in by_channel.values():
            consumer.given_out.difference_update(tags)
            if requeue is not None:
                for tag in tags:
                    consumer.channel.basic_reject(tag, requeue)
            elif len(tags) > 1 and self._all_up_to(consumer, max(tags)):
                consumer.channel.basic_ack(max(tags), multiple=True)
            else:
                for tag in tags:
                    consumer.channel.basic_ack(tag)

    @staticmethod
    def _all_up_to(consumer: Consumer, top: int) -> bool:
        """Whether `consumer` holds no other delivery up to tag `top`, handed out or not: then
        one ack with AMQP's ``multiple`` flag settles the lot (a solo worker's batches)."""
        if consumer.buffer and consumer.buffer[0].delivery_info["delivery_tag"] <= top:
            return False
        return all(tag > top for tag in consumer.given_out)

    def holds(self, delivery: Delivery) -> bool:
        """False once the connection (or channel) `delivery` came on is gone: RabbitMQ requeued
        it. Without the lock (the worker asks for every task it starts, and a fetch holds the
        lock for up to `SLICE`): a stale answer only lets a task start as it would have anyway."""
        link = self._link
        return link is not None and self._live(link, delivery) is not None

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        with self._lock:
            if self._link is None:
                return  # a new connection holds none of these: RabbitMQ requeued them
            try:
                self._settle(self._link, deliveries)
            except ERRORS as exc:
                raise self._failed(exc, "acking") from None

    def reject(self, delivery: Delivery, *, requeue: bool, reason: str = "") -> None:
        if requeue:
            self._give_back(delivery, delivery.delivery_count)
            return
        with self._lock:
            link = self._link
            if link is None or self._live(link, delivery) is None:
                return
            try:
                dead = topo.dead_queue(delivery.queue)
                if dead not in link.declared:
                    link.admin.queue_declare(dead, durable=True, auto_delete=False)
                    link.declared.add(dead)
                self._publish_copy(link, delivery, "", dead,
                                   **{DEAD_REASON: reason or "rejected",
                                      PREVIOUS_DELIVERIES: delivery.delivery_count})
            except ERRORS as exc:
                raise self._failed(exc, "dead-lettering") from None

    def release(self, deliveries: Sequence[Delivery]) -> None:
        """Give back unstarted messages without counting their delivery."""
        for delivery in deliveries:
            self._give_back(delivery, delivery.delivery_count - 1)

    def _give_back(self, delivery: Delivery, previous: int) -> None:
        with self._lock:
            link = self._link
            if link is None or self._live(link, delivery) is None:
                return
            try:
                self._declare(link, delivery.queue)
                self._publish_copy(link, delivery, topo.exchange_for(delivery.queue),
                                   delivery.queue, **{PREVIOUS_DELIVERIES: previous})
            except ERRORS as exc:
                raise self._failed(exc, "requeueing") from None

    # ------------------------------------------------------------------ inspect

    def _queues_of(self, link: Link, queue: str) -> list[str]:
        """`queue` and those of its delay queues that exist."""
        names = [queue] + [topo.delay_queue(queue, level) for level in range(topo.DELAY_LEVELS)]
        return [name for name in names if link.message_count(name) is not None]

    def size(self, queue: str) -> int:
        """Messages waiting in `queue` and in its delay queues; not those a consumer holds."""
        with self._lock:
            link = self._connected()
            try:
                return sum(link.message_count(name) or 0 for name in self._queues_of(link, queue))
            except ERRORS as exc:
                raise self._failed(exc, "counting a queue") from None

    def purge(self, queue: str) -> int:
        """Delete the messages `size` counts; messages a consumer holds stay with it."""
        with self._lock:
            link = self._connected()
            try:
                return sum(int(link.admin.queue_purge(name) or 0)
                           for name in self._queues_of(link, queue))
            except ERRORS as exc:
                raise self._failed(exc, "purging a queue") from None

    def dead_letters(self, queue: str, limit: int = 100) -> list[Delivery]:
        dead = topo.dead_queue(queue)
        with self._lock:
            link = self._connected()
            try:
                channel = link.channel()
                try:
                    return self._browse(channel, dead, limit)
                finally:
                    channel.close()
            except ChannelError:
                return []  # no dead-letter queue yet
            except ERRORS as exc:
                raise self._failed(exc, "reading dead letters") from None

    @staticmethod
    def _browse(channel: Any, dead: str, limit: int) -> list[Delivery]:
        """Get up to `limit` messages unacked; closing the channel puts them back where they
        were."""
        out: list[Delivery] = []
        while len(out) < limit:
            message = channel.basic_get(dead)
            if message is None:
                break
            envelope, bookkeeping = from_message(message)
            out.append(Delivery(message.delivery_info["delivery_tag"], dead, envelope,
                                int(bookkeeping.get(PREVIOUS_DELIVERIES) or 1),
                                {"reason": str(bookkeeping.get(DEAD_REASON) or "")}))
        return out

    # ------------------------------------------------------------------ admin

    def delete_queue(self, queue: str) -> None:
        """Delete `queue`, its dead-letter and delay queues and its exchange (tests, tooling)."""
        with self._lock:
            link = self._connected()
            link.forget(queue)
            names = [queue, topo.dead_queue(queue)] + [
                topo.delay_queue(queue, level) for level in range(topo.DELAY_LEVELS)]
            for name in names:
                link.quietly(lambda ch, name=name: ch.queue_delete(name))  # type: ignore[misc]
                link.declared.discard(name)
            link.quietly(lambda ch: ch.exchange_delete(topo.exchange_for(queue)))
            link.declared.discard(f"{queue} arrival")
            link.declared.discard(f"exchange {topo.exchange_for(queue)}")

    # ------------------------------------------------------------------ broadcast

    def broadcast(self, exchange: str, routing_key: str, envelope: Envelope) -> None:
        """Publish on the exchange named `exchange` (declared as Celery declares it: see
        `kernel_amqp.broadcast`), on a connection of its own, so a broadcast never disturbs
        the consumers of this transport."""
        self._broadcaster.send(exchange, routing_key, envelope)

    def subscribe(self, exchange: str, pattern: str = "#") -> Subscription:
        return AmqpSubscription(self.url, self.options, exchange, pattern)

    def close(self) -> None:
        keepalive, self._keepalive = self._keepalive, None
        if keepalive is not None:
            keepalive.stop()  # without the lock: its tick may be waiting for it
        with self._lock:
            self._drop()
        self._broadcaster.close()


__all__ = ["AmqpTransport"]
