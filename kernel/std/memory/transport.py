"""The in-memory transport: the full transport semantics (priorities, delays,
leases that expire and redeliver, dead letters) within one process, on one lock per broker.

Brokers are process-global by name, so ``memory://x`` opened twice is one broker.
Messages are kept as the same JSON envelope bytes a real broker holds, so a message cannot be
changed after it was published and a producer that would break on the wire breaks here too.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from kernel.errors import DecodeError
from kernel.interfaces.transport import (
    DEAD_LETTER_SUFFIX,
    Delivery,
    Outgoing,
    Subscription,
    Transport,
    clamp_priority,
)
from kernel.message import Envelope
from kernel.parsing import OptionReader
from kernel.specs import Options
from kernel.std.memory import TRANSPORT_CAPABILITIES, name_from_url
from kernel.std.memory.fanout import Hub



class State(Enum):
    READY = 1
    DELAYED = 2
    LEASED = 3
    GONE = 4


@dataclass(eq=False)
class Message:
    id: int
    queue: str
    priority: int
    payload: bytes
    state: State
    not_before: float = 0.0
    lease_until: float = 0.0
    delivery_count: int = 0
    reason: str = ""


class Broker:
    """One named broker. Heaps use lazy deletion: an entry counts only while its message is
    still in the state (and queue, or lease) the entry was made for."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self._ids = itertools.count(1)
        self.live: dict[int, Message] = {}
        self._ready: dict[str, list[tuple[int, int, Message]]] = {}
        self._delayed: list[tuple[float, int, Message]] = []
        self._leases: list[tuple[float, int, Message]] = []
        self.fanout = Hub()

    # Everything below runs with `cond` held.

    def add(self, queue: str, priority: int, payload: bytes, not_before: float | None,
            now: float) -> None:
        msg = Message(next(self._ids), queue, priority, payload, State.READY)
        self.live[msg.id] = msg
        if not_before is not None and not_before > now:
            msg.state, msg.not_before = State.DELAYED, not_before
            heapq.heappush(self._delayed, (not_before, msg.id, msg))
        else:
            self.make_ready(msg)

    def make_ready(self, msg: Message) -> None:
        msg.state = State.READY
        heapq.heappush(self._ready.setdefault(msg.queue, []), (-msg.priority, msg.id, msg))

    def promote(self, now: float) -> None:
        """Delays that are over and leases that ran out make their messages ready."""
        while self._delayed and self._delayed[0][0] <= now:
            _, _, msg = heapq.heappop(self._delayed)
            if msg.state is State.DELAYED:
                self.make_ready(msg)
        while self._leases and self._leases[0][0] <= now:
            until, _, msg = heapq.heappop(self._leases)
            if msg.state is State.LEASED and msg.lease_until == until:
                self.make_ready(msg)

    def next_due(self) -> float | None:
        times = [heap[0][0] for heap in (self._delayed, self._leases) if heap]
        return min(times) if times else None

    def claim(self, queue: str, limit: int, until: float) -> list[Message]:
        heap = self._ready.get(queue)
        out: list[Message] = []
        while heap and len(out) < limit:
            _, _, msg = heapq.heappop(heap)
            if msg.state is State.READY and msg.queue == queue:
                self.lease(msg, until)
                msg.delivery_count += 1
                out.append(msg)
        return out

    def lease(self, msg: Message, until: float) -> None:
        msg.state, msg.lease_until = State.LEASED, until
        heapq.heappush(self._leases, (until, msg.id, msg))

    def held(self, delivery: Delivery) -> Message | None:
        """The message of `delivery` if it was not redelivered since (or removed)."""
        msg = self.live.get(delivery.tag)
        if msg is None or msg.delivery_count != delivery.delivery_count:
            return None
        return msg

    def remove(self, msg: Message) -> None:
        msg.state = State.GONE
        self.live.pop(msg.id, None)

    def waiting(self, queue: str) -> list[Message]:
        return [m for m in self.live.values()
                if m.queue == queue and m.state in (State.READY, State.DELAYED)]


_brokers: dict[str, Broker] = {}
_registry_lock = threading.Lock()


def _broker(name: str) -> Broker:
    with _registry_lock:
        return _brokers.setdefault(name, Broker())


class MemoryTransport(Transport):
    """``memory://`` or ``memory://name``. Option ``lease_seconds`` (30) as for SQLite."""

    capabilities = TRANSPORT_CAPABILITIES

    def __init__(self, url: str, options: Options | None = None) -> None:
        self.url = url
        self.lease_seconds = OptionReader(options or {}, "memory transport").number(
            "lease_seconds", 30.0, positive=True)
        self._broker = _broker(name_from_url(url))

    def __repr__(self) -> str:
        return f"<MemoryTransport {self.url}>"

    def publish(self, messages: Sequence[Outgoing]) -> None:
        encoded = [(m.queue, clamp_priority(m.priority),
                    m.envelope.to_json(m.queue), m.not_before) for m in messages]
        broker = self._broker
        with broker.cond:
            now = time.time()
            for queue, priority, payload, not_before in encoded:
                broker.add(queue, priority, payload, not_before, now)
            broker.cond.notify_all()

    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Delivery]:
        """Blocks on the broker's condition; woken by a publish or when a delay or lease ends."""
        if limit <= 0 or not queues:
            return []
        deadline = time.monotonic() + max(0.0, timeout)
        broker = self._broker
        with broker.cond:
            while True:
                now = time.time()
                broker.promote(now)
                claimed: list[Message] = []
                for queue in queues:
                    claimed += broker.claim(queue, limit - len(claimed), now + self.lease_seconds)
                    if len(claimed) >= limit:
                        break
                if claimed:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                due = broker.next_due()
                broker.cond.wait(left if due is None else min(left, max(0.0, due - now)))
        return self._deliveries(claimed)

    def _deliveries(self, messages: Iterable[Message]) -> list[Delivery]:
        out = []
        for msg in messages:
            delivery = Delivery(msg.id, msg.queue, Envelope(b"", {}), msg.delivery_count,
                                {"reason": msg.reason} if msg.reason else {})
            try:
                delivery.envelope = Envelope.from_json(msg.payload)
            except DecodeError as exc:
                self.reject(delivery, requeue=False, reason=str(exc))
                continue
            out.append(delivery)
        return out

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        broker = self._broker
        with broker.cond:
            for delivery in deliveries:
                msg = broker.live.get(delivery.tag)
                if msg is not None:
                    broker.remove(msg)

    def reject(self, delivery: Delivery, *, requeue: bool, reason: str = "") -> None:
        broker = self._broker
        with broker.cond:
            msg = broker.held(delivery)
            if msg is None:
                return
            if requeue:
                if msg.state is State.LEASED:
                    broker.make_ready(msg)
            else:
                msg.queue, msg.reason = msg.queue + DEAD_LETTER_SUFFIX, reason
                broker.make_ready(msg)
            broker.cond.notify_all()

    def release(self, deliveries: Sequence[Delivery]) -> None:
        """Give back unstarted messages; their delivery does not count."""
        broker = self._broker
        with broker.cond:
            for delivery in deliveries:
                msg = broker.held(delivery)
                if msg is not None and msg.state is State.LEASED:
                    msg.delivery_count -= 1
                    broker.make_ready(msg)
            broker.cond.notify_all()

    def extend_lease(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        broker = self._broker
        with broker.cond:
            until = time.time() + seconds
            for delivery in deliveries:
                msg = broker.held(delivery)
                if msg is not None and msg.state is State.LEASED:
                    broker.lease(msg, until)

    def broadcast(self, exchange: str, routing_key: str, envelope: Envelope) -> None:
        self._broker.fanout.send(exchange, routing_key, envelope)

    def subscribe(self, exchange: str, pattern: str = "#") -> Subscription:
        return self._broker.fanout.subscribe(exchange, pattern)

    def size(self, queue: str) -> int:
        """Ready, delayed, and leased messages whose lease ran out; not those held now."""
        broker = self._broker
        with broker.cond:
            broker.promote(time.time())
            return len(broker.waiting(queue))

    def purge(self, queue: str) -> int:
        broker = self._broker
        with broker.cond:
            broker.promote(time.time())
            doomed = broker.waiting(queue)
            for msg in doomed:
                broker.remove(msg)
            return len(doomed)

    def dead_letters(self, queue: str, limit: int = 100) -> list[Delivery]:
        """The oldest messages of ``queue + ".dead"``; ``extra["reason"]`` says why each died."""
        dead = queue + DEAD_LETTER_SUFFIX
        broker = self._broker
        with broker.cond:
            found = sorted((m for m in broker.live.values() if m.queue == dead),
                           key=lambda m: m.id)[:limit]
            snapshot = [Message(m.id, m.queue, m.priority, m.payload, m.state,
                                delivery_count=m.delivery_count, reason=m.reason) for m in found]
        out = []
        for msg in snapshot:
            try:
                envelope = Envelope.from_json(msg.payload)
            except DecodeError:
                envelope = Envelope(msg.payload, {})
            out.append(Delivery(msg.id, dead, envelope, msg.delivery_count,
                                {"reason": msg.reason}))
        return out
