"""The event dispatcher's flusher thread: task events go out within FLUSH_INTERVAL, every
time, not only in the first batch of a process."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

from kernel import App
from kernel.events import EventReceiver
from kernel.events.dispatcher import BATCH, FLUSH_INTERVAL


def test_task_events_after_an_idle_flusher_are_sent() -> None:
    """Once the flusher sent a batch and went idle, the next task event must wake it: events
    sent apart (a rate-limited task's, seconds after the one before) reached no receiver
    until BATCH of them had piled up."""
    url = f"memory://{uuid.uuid4().hex}"
    app = App("events", broker=url, results=None, config={"worker_send_task_events": True})
    try:
        with EventReceiver(app) as receiver:
            for n in range(3):
                app.events.task("task-started", "w@h", uuid=f"t{n}")
                got = list(receiver.events(timeout=FLUSH_INTERVAL + 5, limit=1))
                assert [e.get("uuid") for e in got] == [f"t{n}"], \
                    f"task event {n} was not sent while the flusher was idle"
    finally:
        app.events.close()
        app.close()


def test_a_flush_sends_messages_of_even_size() -> None:
    """201 buffered events go as two messages of 101 and 100, not 200 and a straggler: every
    message costs a publish, and a flush chasing late events sent many of one or two."""
    url = f"memory://{uuid.uuid4().hex}"
    app = App("events", broker=url, results=None, config={"worker_send_task_events": True})
    sizes: list[int] = []
    real = app.transport.broadcast

    def counted(exchange: str, key: str, envelope: Any) -> None:
        sizes.append(len(json.loads(envelope.body)) if key == "task.multi" else 1)
        real(exchange, key, envelope)

    app.transport.broadcast = counted  # type: ignore[method-assign, assignment]
    try:
        events = app.events
        events._start = lambda: None  # type: ignore[method-assign]  # no flusher: flush here
        events._thread = threading.current_thread()
        for n in range(BATCH + 1):
            events.task("task-started", "w@h", uuid=f"t{n}")
        events.flush()
        assert sorted(sizes) == [BATCH // 2, BATCH // 2 + 1], sizes
    finally:
        app.events.close()
        app.close()
