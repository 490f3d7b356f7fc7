"""The event dispatcher's flusher thread: task events go out within FLUSH_INTERVAL, every
time, not only in the first batch of a process."""

from __future__ import annotations

import uuid

from kernel import App
from kernel.events import EventReceiver
from kernel.events.dispatcher import FLUSH_INTERVAL


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
