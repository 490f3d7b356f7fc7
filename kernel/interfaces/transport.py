"""The transport contract: how task messages reach workers.

The worker calls these methods on its hot path, never through pluggy. A transport is created per
process from a URL; it MUST be safe to call from several threads of that process at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kernel.errors import MissingCapability

if TYPE_CHECKING:
    from kernel.message import Envelope


#: The dead-letter queue of queue Q is the queue named Q + DEAD_LETTER_SUFFIX: it can be fetched
#: from, acked and purged like any queue (that is how `kernel dlq replay` and `purge` work).
DEAD_LETTER_SUFFIX = ".dead"
#: priorities run from 0 to MAX_PRIORITY; a higher number is delivered first.
MAX_PRIORITY = 9


def clamp_priority(priority: int) -> int:
    """`priority` brought into 0..MAX_PRIORITY, as a transport stores it."""
    return max(0, min(MAX_PRIORITY, int(priority)))


@dataclass(frozen=True)
class TransportCapabilities:
    """What a transport can do. The kernel checks these at start-up; a transport MUST NOT claim
    a capability it only emulates in a way that breaks the stated guarantee."""

    #: `publish` with `not_before` keeps the message at the broker until it is due.
    delayed_delivery: bool = False
    #: messages with a higher priority are delivered first within a queue.
    priorities: bool = False
    #: `extend_lease` keeps a delivered message from being redelivered while its task runs.
    leases: bool = False
    #: `reject(..., requeue=False)` keeps the message in a dead-letter queue, not dropping it.
    dead_letter: bool = False
    #: several processes on one host can share the broker (false for in-memory).
    multi_process: bool = True
    #: `size` and `purge` are supported.
    inspect_queues: bool = True
    #: `broadcast` and `subscribe` work (fanout, for events and remote control).
    broadcast: bool = False
    #: `ack`, `reject` and `release` work from any connection, in any process, given a
    #: delivery's tag, queue and count: a prefork worker's process settles what a child it
    #: lost held. Not AMQP, where a tag belongs to the channel that received the message.
    settle_anywhere: bool = False
    #: `publish` honours `Outgoing.exchange` (the broker routes by exchange and routing key,
    #: AMQP) and `declare_bindings` declares exchanges; without it, kernel delivers to the
    #: queue it resolved from ``task_queues``.
    exchanges: bool = False


@dataclass(frozen=True)
class Outgoing:
    """One message to publish."""

    queue: str
    envelope: Envelope
    priority: int = 0
    #: unix time before which the message MUST NOT be delivered (None: now).
    not_before: float | None = None
    #: where a transport with exchanges publishes it instead of `queue`'s own exchange (a
    #: route or ``task_queues`` named one), with `routing_key` (None: the queue's name).
    exchange: str | None = None
    routing_key: str | None = None


@dataclass(frozen=True)
class Binding:
    """A queue bound to an exchange with a routing key (a pattern for topic exchanges, none
    for fanout ones): what ``task_queues`` declares."""

    queue: str
    exchange: str
    exchange_type: str = "direct"
    routing_key: str = ""


@dataclass
class Delivery:
    """One message handed to a consumer. `tag` identifies it for ack/reject/extend_lease."""

    tag: Any
    queue: str
    envelope: Envelope
    #: how many times this message has been delivered, this delivery included (1 = first).
    delivery_count: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def redelivered(self) -> bool:
        return self.delivery_count > 1


def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: words split on ".", ``*`` is one word, ``#`` zero or more."""
    def match(pw: list[str], kw: list[str]) -> bool:
        if not pw:
            return not kw
        if pw[0] == "#":
            return any(match(pw[1:], kw[i:]) for i in range(len(kw) + 1))
        return bool(kw) and pw[0] in ("*", kw[0]) and match(pw[1:], kw[1:])

    return match(pattern.split("."), routing_key.split("."))


def exchange_type(name: str) -> str:
    """The AMQP type Celery gives the exchange called `name`: ``direct`` for remote-control
    replies (``reply.<namespace>.pidbox``), ``fanout`` for remote-control commands
    (``<namespace>.pidbox``), ``topic`` for the rest (``celeryev`` events included)."""
    if name.endswith(".pidbox"):
        return "direct" if name.startswith("reply.") else "fanout"
    return "topic"


class Subscription(ABC):
    """Messages broadcast on one exchange since `Transport.subscribe` returned.

    Fanout is at-most-once: a subscriber sees what is broadcast while it listens and nothing
    from before; across a reconnect it MAY miss messages but MUST keep listening (resubscribe by
    itself). Safe to use from the one thread that owns it.
    """

    @abstractmethod
    def get(self, timeout: float) -> list[tuple[str, Envelope]]:
        """Block until at least one message arrived or `timeout` seconds pass (then []), without
        spinning the CPU; return ``(routing_key, envelope)`` pairs in the order they were sent."""

    @abstractmethod
    def close(self) -> None:
        """Stop listening and release the connection. Safe to call twice."""


class Transport(ABC):
    """A broker connection, created as ``factory(url, options)``.

    `options` is the app's ``transport_options`` plus ``lease_seconds`` (the worker's
    ``worker_lease_seconds``): transports with leases SHOULD lease fetched messages for that long.

    Delivery semantics: at-least-once. A fetched message stays owned by this consumer until it is
    acked or rejected; if the consumer dies, the message MUST become deliverable again (after the
    lease expires, or when the broker notices the connection is gone).

    Priorities: 0..`MAX_PRIORITY`, a higher number is delivered first (when
    `capabilities.priorities`).
    """

    capabilities: TransportCapabilities = TransportCapabilities()

    @abstractmethod
    def publish(self, messages: Sequence[Outgoing]) -> None:
        """Publish a batch.

        MUST return only when every message is durably held by the broker (as durable as the
        broker gets). MUST NOT publish a message twice. Order within one queue and one priority
        is preserved. Raises `kernel.errors.ConnectionFailed` if the broker cannot be reached
        after the transport's own reconnect attempts; a transport of a server broker MUST
        raise it within its option ``connection_timeout`` (``broker_connection_timeout``)
        when the broker cannot be reached, and a batch it raised for MUST NOT have been
        delivered, or else (the broker's reply was lost) its docs MUST say so.
        """

    @abstractmethod
    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Delivery]:
        """Take up to `limit` deliverable messages from `queues`.

        MUST block until at least one message is available or `timeout` seconds have passed (then
        return []), without spinning the CPU. MUST prefer `queues` in the order given when several
        have messages, and higher priorities first within a queue. A message whose `not_before`
        is in the future MUST NOT be returned. Each returned message is leased to this consumer.
        """

    @abstractmethod
    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Remove finished messages for good. Acking an unknown or already-acked tag is a no-op."""

    @abstractmethod
    def reject(self, delivery: Delivery, *, requeue: bool, reason: str = "") -> None:
        """Give a message back (`requeue=True`: deliverable again at once) or drop it
        (`requeue=False`: into the dead-letter queue when `capabilities.dead_letter`, with
        `reason`).
        """

    def release(self, deliveries: Sequence[Delivery]) -> None:
        """Return prefetched messages that were never started, without counting a delivery.

        The default requeues each one; transports that count deliveries SHOULD undo the count.
        A delivery that is no longer this consumer's (its lease ran out and the message went
        to another, or its connection dropped) MUST be left alone, as `ack` leaves it; where
        `settle_anywhere`, so MUST one released already, whose message was delivered again
        (a prefork worker's process gives back what a lost child last said it held).
        """
        for delivery in deliveries:
            self.reject(delivery, requeue=True, reason="released unstarted")

    def extend_lease(self, deliveries: Sequence[Delivery], seconds: float) -> None:  # noqa: B027
        """Keep `deliveries` owned by this consumer for `seconds` more.

        Transports with `capabilities.leases` MUST implement this; the worker calls it well
        before the lease ends for every message it holds, so a long task is never redelivered
        while its worker lives.
        """

    def holds(self, delivery: Delivery) -> bool:
        """False when the transport knows `delivery` is no longer this consumer's: the broker
        took the message back (the connection it came on dropped, so the broker requeued it).
        The worker asks before it starts a prefetched task, and gives back instead of running
        one it no longer holds (the broker delivers it again: running it would run it twice).

        Called for every task the worker starts: MUST answer from what the transport knows,
        without a call to the broker. The default, True, is right for transports with leases
        (the worker keeps track of those itself).
        """
        return True

    def size(self, queue: str) -> int:
        """Number of messages waiting in `queue` (delayed ones included)."""
        raise NotImplementedError(f"{type(self).__name__} cannot count a queue")

    def purge(self, queue: str) -> int:
        """Delete every waiting message of `queue`; return how many were deleted."""
        raise NotImplementedError(f"{type(self).__name__} cannot purge a queue")

    def dead_letters(self, queue: str, limit: int = 100) -> list[Delivery]:
        """Read (without removing) up to `limit` messages of the dead-letter queue of `queue`,
        oldest first; each one's ``extra["reason"]`` is the reason given to `reject`."""
        raise NotImplementedError(f"{type(self).__name__} has no dead-letter queue")

    def broadcast(self, exchange: str, routing_key: str, envelope: Envelope) -> None:
        """Send `envelope` to every current subscriber of `exchange` whose pattern matches
        `routing_key` (events, remote-control commands).

        Transports with `capabilities.broadcast` MUST implement this without waiting for slow
        subscribers, on Celery's names where Celery has them (Redis: PUBLISH on
        ``/<db>.<exchange>/<routing_key>``; AMQP: the fanout or topic exchange of that name), so
        Flower and Celery workers see what kernel broadcasts. Nobody listening is not an error.
        On a direct exchange (`exchange_type`: remote-control replies) the message goes to the
        subscribers of exactly `routing_key`, as Celery's clients wait for it (Redis: LPUSH
        on each list the kombu binding set ``_kombu.binding.<exchange>`` names for that key).
        """
        raise MissingCapability(f"{type(self).__name__} cannot broadcast: events and remote "
                                f"control need a broker with fanout (redis, amqp, sqlite)")

    def subscribe(self, exchange: str, pattern: str = "#") -> Subscription:
        """Listen to `exchange` for routing keys matching `pattern` (AMQP topic syntax: ``#``
        everything, ``worker.#``, an exact key; on a direct exchange an exact key only).
        Messages broadcast after this returns MUST be delivered to the subscription, each once,
        while it stays open."""
        raise MissingCapability(f"{type(self).__name__} cannot subscribe to broadcasts: events "
                                f"and remote control need a broker with fanout (redis, amqp, "
                                f"sqlite)")

    def declare_bindings(self, bindings: Sequence[Binding]) -> None:  # noqa: B027
        """Declare these exchanges and bind these queues (``task_queues``), once, before the
        first publish or fetch that needs them; a transport without exchanges has nothing to
        declare."""

    def close(self) -> None:  # noqa: B027
        """Release connections. Safe to call twice."""
