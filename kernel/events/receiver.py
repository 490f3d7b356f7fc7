"""Receiving events: `EventReceiver`, over the broker's broadcast, from kernel and Celery
workers alike.

A message that is not an event (not JSON, no type, too big) is logged with its reason and
dropped; a handler that raises is logged and the next event is handled: a monitor never stops
for what one worker sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from kernel.errors import DecodeError
from kernel.events import event as ev
from kernel.interfaces.transport import Subscription

if TYPE_CHECKING:
    from kernel.app import App

log = logging.getLogger("kernel.events")

Handler = Callable[[dict[str, Any]], None]


class EventReceiver:
    """``for event in EventReceiver(app).events(timeout=10): ...``, or with handlers by type
    (``"*"`` for every event): ``EventReceiver(app, {"task-failed": on_failed}).capture()``.

    Each event is the dict the worker sent, plus ``local_received`` (this host's time.time()
    on arrival); its ``timestamp`` is shifted to this host's zone as Celery does."""

    def __init__(self, app: App, handlers: Mapping[str, Handler] | None = None, *,
                 pattern: str = "#") -> None:
        self.app = app
        self.handlers = dict(handlers or {})
        self.pattern = pattern
        self.clock = ev.Clock()
        self.dropped = 0
        self._subscription: Subscription | None = None
        self._offset = ev.utcoffset()

    def __enter__(self) -> EventReceiver:
        self.listen()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def listen(self) -> None:
        """Subscribe now: every event sent after this returns is received."""
        if self._subscription is None:
            self._subscription = self.app.transport.subscribe(self.app.conf.event_exchange,
                                                              self.pattern)

    def close(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None

    def events(self, timeout: float | None = None, limit: int | None = None,
               *, idle: float | None = None) -> Iterator[dict[str, Any]]:
        """Events as they arrive, until `timeout` seconds passed, `limit` events came, or
        `idle` seconds passed without one (each None: no such end)."""
        self.listen()
        assert self._subscription is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        quiet_until = None if idle is None else time.monotonic() + idle
        count = 0
        while limit is None or count < limit:
            now = time.monotonic()
            ends = [t for t in (deadline, quiet_until) if t is not None]
            if ends and now >= min(ends):
                return
            wait = min([0.5, *(t - now for t in ends)])
            for key, envelope in self._subscription.get(max(0.0, wait)):
                for event in self._decode(key, envelope):
                    count += 1
                    if idle is not None:
                        quiet_until = time.monotonic() + idle
                    yield event
                    if limit is not None and count >= limit:
                        return

    def capture(self, limit: int | None = None, timeout: float | None = None, *,
                wakeup: bool = False) -> None:
        """Run the handlers on events until `limit` or `timeout`; `wakeup` asks every
        worker for a heartbeat first, so the live ones show at once."""
        self.listen()
        if wakeup:
            self.app.control.heartbeat()
        for _ in self.events(timeout=timeout, limit=limit):
            pass

    def _decode(self, key: str, envelope: Any) -> Iterator[dict[str, Any]]:
        try:
            events = list(ev.unpack(envelope))
        except DecodeError as exc:
            self.dropped += 1
            log.warning("dropped a message on %s/%s: %s", self.app.conf.event_exchange, key, exc)
            return
        now = time.time()
        for event in events:
            self.clock.adjust(event.get("clock"))
            event["local_received"] = now
            offset = event.get("utcoffset")
            if isinstance(offset, (int, float)) and isinstance(event.get("timestamp"),
                                                               (int, float)):
                event["timestamp"] += (self._offset - offset) * 3600
            self._handle(event)
            yield event

    def _handle(self, event: dict[str, Any]) -> None:
        for handler in (self.handlers.get(event["type"]), self.handlers.get("*")):
            if handler is None:
                continue
            try:
                handler(event)
            except Exception:  # noqa: BLE001 - one event never stops the monitor
                log.exception("event handler %r failed on %s", handler, event["type"])
