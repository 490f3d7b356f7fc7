"""In-process fanout: subscriptions that live in this process's memory (the memory broker's
broadcast). Messages travel as envelope JSON bytes, decoded by each subscriber, so no two
subscribers share (and could change) one object."""

from __future__ import annotations

import threading
from collections import deque

from kernel.interfaces.transport import Subscription, topic_matches
from kernel.message import Envelope


class LocalSubscription(Subscription):
    def __init__(self, hub: Hub, exchange: str, pattern: str) -> None:
        self._hub = hub
        self.exchange = exchange
        self.pattern = pattern
        self._cond = threading.Condition()
        self._inbox: deque[tuple[str, bytes]] = deque()

    def deliver(self, routing_key: str, payload: bytes) -> None:
        if topic_matches(self.pattern, routing_key):
            with self._cond:
                self._inbox.append((routing_key, payload))
                self._cond.notify()

    def get(self, timeout: float) -> list[tuple[str, Envelope]]:
        with self._cond:
            if not self._inbox:
                self._cond.wait(max(0.0, timeout))
            got = list(self._inbox)
            self._inbox.clear()
        return [(key, Envelope.from_json(payload)) for key, payload in got]

    def close(self) -> None:
        self._hub.remove(self)


class Hub:
    """Every open subscription of one broker, by exchange."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[str, list[LocalSubscription]] = {}

    def subscribe(self, exchange: str, pattern: str) -> LocalSubscription:
        sub = LocalSubscription(self, exchange, pattern)
        with self._lock:
            self._subs.setdefault(exchange, []).append(sub)
        return sub

    def remove(self, sub: LocalSubscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.exchange, [])
            if sub in subs:
                subs.remove(sub)

    def send(self, exchange: str, routing_key: str, envelope: Envelope) -> None:
        with self._lock:
            subs = list(self._subs.get(exchange, ()))
        payload = envelope.to_json(routing_key, exchange)
        for sub in subs:
            sub.deliver(routing_key, payload)
