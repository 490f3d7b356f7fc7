"""Tasks run by real ``kernel worker`` processes in the end-to-end tests, configured through the
environment: ``KERNEL_BROKER_URL`` (read by App), ``E2E_RESULTS`` (the result backend; none
unless set), ``E2E_QUEUE``, ``E2E_MAX_DELIVERIES``, ``E2E_QUEUE_TYPE`` (transport option
queue_type) and ``E2E_BOOK``, a file each run appends
``<task id> <pid>`` to (`kernel.testing.files.append_line`), so a test can tell how often and
where each task ran."""

from __future__ import annotations

import os
import time
from typing import Any

from kernel import App
from kernel.testing.files import append_line

app = App("amqp-e2e", config={
    "task_default_queue": os.environ.get("E2E_QUEUE", "e2e"),
    "task_max_deliveries": int(os.environ.get("E2E_MAX_DELIVERIES", "10")),
    "transport_options": {"queue_type": os.environ.get("E2E_QUEUE_TYPE", "classic")},
    "result_backend": os.environ.get("E2E_RESULTS") or None,
})


def book(task_id: str) -> None:
    append_line(os.environ["E2E_BOOK"], f"{task_id} {os.getpid()}")


@app.task(name="e2e.work", bind=True)
def work(self: Any, seconds: float) -> None:
    book(self.request.id)
    time.sleep(seconds)


@app.task(name="e2e.crash", bind=True)
def crash(self: Any) -> None:
    """A poison message: books its run, then kills the process running it (a prefork child, or
    the whole worker under the solo pool)."""
    book(self.request.id)
    os._exit(1)


@app.task(name="e2e.add")
def add(x: int, y: int) -> int:
    return x + y
