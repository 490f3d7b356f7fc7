"""Sending events: `EventDispatcher`, one per process and app (``app.events``).

Worker events (online, heartbeat, offline) go out at once. Task events are buffered and sent
together by a thread of their own, one ``task.multi`` message (a JSON list, as Celery batches
them) every `FLUSH_INTERVAL` or every `BATCH` events, so that no task waits on the broker for
its events, whichever thread or process runs it. Events are at-most-once, as the broadcast
contract is: when the broker cannot be reached they are dropped, with a warning now and then,
and never break or slow a task.

`listeners` see every event built in this process, sent or not (task events are built for
them even while sending is off): how the worker's own metrics count without a broker trip.
"""

from __future__ import annotations

import atexit
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from kernel.events import event as ev

if TYPE_CHECKING:
    from kernel.app import App
    from kernel.interfaces.transport import Outgoing

log = logging.getLogger("kernel.events")

#: seconds a task event waits at most before it is sent.
FLUSH_INTERVAL = 0.1
#: task events sent in one message at most.
BATCH = 200
#: task events kept while the broker is away; the oldest are dropped beyond this.
BUFFER = 10_000
#: seconds between two warnings that events cannot be sent.
WARN_EVERY = 30.0

Listener = Callable[[dict[str, Any]], None]


class EventDispatcher:
    def __init__(self, app: App) -> None:
        self.app = app
        self.exchange = app.conf.event_exchange
        self.clock = ev.Clock()
        #: task events are sent (`-E`, ``worker_send_task_events``, ``enable_events``).
        self.task_events = app.conf.worker_send_task_events
        self.listeners: list[Listener] = []
        self._buffer: deque[dict[str, Any]] = deque(maxlen=BUFFER)
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._sleeping = False  # the flusher waits for a first event
        self._closed = False
        self._warned = 0.0
        self._client_hostname = ev.client_hostname()
        self.dropped = 0

    @property
    def wanted(self) -> bool:
        """Task events are worth building: sent, or someone in this process listens."""
        return self.task_events or bool(self.listeners)

    # ------------------------------------------------------------------ sending

    def send(self, event_type: str, hostname: str, **fields: Any) -> dict[str, Any]:
        """Build and send an event now (worker events); never raises."""
        event = ev.make(event_type, hostname, self.clock.forward(), **fields)
        self._tell(event)
        self._publish(ev.routing_key(event_type), event, hostname)
        return event

    def task(self, event_type: str, hostname: str, *, force: bool = False,
             **fields: Any) -> None:
        """Buffer a task event for the flusher thread (dropped at once when task events are
        off, unless `force`, and nobody in this process listens)."""
        if not (force or self.wanted):
            return
        event = ev.make(event_type, hostname, self.clock.forward(), **fields)
        if self.listeners:
            self._tell(event)
        if not (force or self.task_events) or self._closed:
            return
        # A deque appends atomically: the lock is taken only to wake the flusher, when it
        # sleeps for want of events (it then waits FLUSH_INTERVAL for company) and for a full
        # batch. Waking it for every event cost more than sending them.
        buffer = self._buffer
        buffer.append(event)
        if self._sleeping or len(buffer) == BATCH or self._thread is None:
            with self._cond:
                if self._thread is None:
                    self._start()
                self._sleeping = False  # woken once: the events after this one need not
                self._cond.notify()

    def note(self, kind: str, hostname: str, **fields: Any) -> None:
        """Tell this process's listeners only (never sent): what a worker's metrics count
        that is no event on Celery's wire (a lost broker, a dead letter)."""
        if self.listeners:
            self._tell({"type": kind, "hostname": hostname, "timestamp": time.time(),
                        **fields})

    def sent(self, batch: Sequence[Outgoing]) -> None:
        """task-sent events for messages a client published (``task_send_sent_event``)."""
        hostname = self._client_hostname
        for out in batch:
            h = out.envelope.headers
            info = out.envelope.properties.get("delivery_info") or {}
            self.task("task-sent", hostname, force=True, uuid=h.get("id"), name=h.get("task"),
                      root_id=h.get("root_id"), parent_id=h.get("parent_id"),
                      args=h.get("argsrepr"), kwargs=h.get("kwargsrepr"),
                      retries=h.get("retries") or 0, eta=h.get("eta"), expires=h.get("expires"),
                      queue=out.queue, exchange=info.get("exchange", ""),
                      routing_key=info.get("routing_key", out.queue))

    def flush(self) -> None:
        """Send what is buffered now. Events that arrive meanwhile wait for the next flush:
        chasing them sent many in messages of one or two events, each paying a publish."""
        pending = len(self._buffer)
        # In messages of even size: 201 events go as 101 and 100, not as 200 and 1.
        size = math.ceil(pending / math.ceil(pending / BATCH)) if pending else 0
        while pending > 0:
            with self._cond:
                batch = [self._buffer.popleft()
                         for _ in range(min(size, pending, len(self._buffer)))]
            if not batch:
                return
            pending -= len(batch)
            by_host: dict[str, list[dict[str, Any]]] = {}
            for event in batch:
                by_host.setdefault(event["hostname"], []).append(event)
            for hostname, events in by_host.items():
                if len(events) == 1:
                    self._publish(ev.routing_key(events[0]["type"]), events[0], hostname)
                else:
                    self._publish(ev.MULTI, events, hostname)

    def close(self) -> None:
        """Send what is buffered and stop the flusher thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)
        self.flush()

    # ------------------------------------------------------------------ inside

    def _tell(self, event: dict[str, Any]) -> None:
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a metric never breaks a task
                log.exception("event listener %r failed on %s", listener, event["type"])

    def _publish(self, key: str, body: dict[str, Any] | list[dict[str, Any]],
                 hostname: str) -> None:
        try:
            self.app.transport.broadcast(self.exchange, key, ev.envelope(body, hostname))
        except Exception as exc:  # noqa: BLE001 - events never break what sends them
            self.dropped += len(body) if isinstance(body, list) else 1
            now = time.monotonic()
            if now - self._warned > WARN_EVERY:
                self._warned = now
                log.warning("cannot send events (%s); %d dropped so far. Monitoring misses "
                            "them; tasks are not affected", exc, self.dropped)

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._flush_loop, name="kernel-events",
                                        daemon=True)
        self._thread.start()
        atexit.register(self.close)  # a client's last task-sent events

    def _flush_loop(self) -> None:
        while True:
            with self._cond:
                self._sleeping = True  # set and read under the lock: no wake-up is missed
                self._cond.wait_for(lambda: self._closed or bool(self._buffer))
                self._sleeping = False
                # The first event waits a little for company: one message for many.
                self._cond.wait_for(lambda: self._closed or len(self._buffer) >= BATCH,
                                    FLUSH_INTERVAL)
                closed = self._closed
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the thread must outlive a bug in one batch
                log.exception("sending a batch of events failed; the next batch is tried")
            if closed:
                return
