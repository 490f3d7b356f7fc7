"""The in-memory transport and result store: the full transport semantics (priorities, delays,
leases that expire and redeliver, dead letters) within one process, on one lock per broker.

Brokers and stores are process-global by name, so ``memory://x`` opened twice is one broker.
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

from kernel.errors import ConfigurationError, DecodeError
from kernel.interfaces.results import ResultStore
from kernel.interfaces.transport import (
    DEAD_LETTER_SUFFIX,
    Delivery,
    Outgoing,
    Subscription,
    Transport,
)
from kernel.message import Envelope
from kernel.specs import Options
from kernel.std.fanout import Hub
from kernel.std.memory import RESULT_STORE_CAPABILITIES, TRANSPORT_CAPABILITIES
from kernel.std.sqlite_db import number_option

MAX_PRIORITY = 9
#: expired results are dropped by a write at most this often (reads ignore them meanwhile).
SWEEP_EVERY = 60.0


def name_from_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme != "memory":
        raise ConfigurationError(f"{url!r} is not a memory URL; write memory:// or memory://name")
    return rest.strip("/")


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
_stores: dict[str, StoreTable] = {}
_registry_lock = threading.Lock()


def _broker(name: str) -> Broker:
    with _registry_lock:
        return _brokers.setdefault(name, Broker())


class MemoryTransport(Transport):
    """``memory://`` or ``memory://name``. Option ``lease_seconds`` (30) as for SQLite."""

    capabilities = TRANSPORT_CAPABILITIES

    def __init__(self, url: str, options: Options | None = None) -> None:
        self.url = url
        self.lease_seconds = number_option(options or {}, "lease_seconds", 30.0)
        self._broker = _broker(name_from_url(url))

    def __repr__(self) -> str:
        return f"<MemoryTransport {self.url}>"

    def publish(self, messages: Sequence[Outgoing]) -> None:
        encoded = [(m.queue, max(0, min(MAX_PRIORITY, int(m.priority))),
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


# ---------------------------------------------------------------------------------- results


class StoreTable:
    """One named store: values with their expiry (monotonic time), and a condition for waits."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.values: dict[str, tuple[bytes, float | None]] = {}
        self.next_sweep = time.monotonic() + SWEEP_EVERY

    def get(self, key: str, now: float) -> bytes | None:
        item = self.values.get(key)
        if item is None:
            return None
        if item[1] is not None and item[1] <= now:
            del self.values[key]
            return None
        return item[0]


class MemoryResultStore(ResultStore):
    """``memory://`` or ``memory://name``; values live as long as the process."""

    capabilities = RESULT_STORE_CAPABILITIES

    def __init__(self, url: str, options: Options | None = None) -> None:
        self.url = url
        name = name_from_url(url)
        with _registry_lock:
            self._table = _stores.setdefault(name, StoreTable())

    def __repr__(self) -> str:
        return f"<MemoryResultStore {self.url}>"

    def set(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        table = self._table
        with table.cond:
            now = time.monotonic()
            until = None if expires is None else now + expires
            for key, value in items:
                table.values[key] = (bytes(value), until)
            if now >= table.next_sweep:
                table.next_sweep = now + SWEEP_EVERY
                for key in [k for k, (_, t) in table.values.items() if t is not None and t <= now]:
                    del table.values[key]
            table.cond.notify_all()

    def get(self, key: str) -> bytes | None:
        with self._table.cond:
            return self._table.get(key, time.monotonic())

    def delete(self, keys: Sequence[str]) -> None:
        with self._table.cond:
            for key in keys:
                self._table.values.pop(key, None)

    def incr(self, key: str, amount: int = 1, expires: float | None = None) -> int:
        table = self._table
        with table.cond:
            now = time.monotonic()
            current = table.get(key, now)
            value = (int(current) if current else 0) + amount
            old = table.values.get(key)
            until = now + expires if expires is not None else (old[1] if old else None)
            table.values[key] = (str(value).encode(), until)
            table.cond.notify_all()
            return value

    def wait(self, key: str, timeout: float | None, unless: bytes | None = None) -> bytes | None:
        """Woken by the write itself, never by polling."""
        table = self._table
        deadline = None if timeout is None else time.monotonic() + timeout
        with table.cond:
            while True:
                value = table.get(key, time.monotonic())
                if value is not None and value != unless:
                    return value
                if deadline is None:
                    table.cond.wait()
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                table.cond.wait(left)
