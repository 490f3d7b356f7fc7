"""The task the fault scenarios run, in real ``kernel worker`` processes, configured through the
environment: ``KERNEL_BROKER_URL`` / ``KERNEL_RESULT_BACKEND`` (read by App), ``FAULTS_QUEUE``,
``FAULTS_LEASE`` (worker_lease_seconds) and ``FAULTS_BOOK``, the file each run writes to (see
`tests.faults.book`)."""

from __future__ import annotations

import os
import time
from typing import Any

from kernel import App
from kernel.testing.files import append_line

app = App("faults", config={
    "task_default_queue": os.environ.get("FAULTS_QUEUE", "faults"),
    "worker_lease_seconds": float(os.environ.get("FAULTS_LEASE", "30")),
})


def book(kind: str, task_id: str) -> None:
    """One line, ``<kind> <task id> <pid> <time.monotonic()>`` (CLOCK_MONOTONIC is the
    machine's: the test reads the same clock)."""
    append_line(os.environ["FAULTS_BOOK"], f"{kind} {task_id} {os.getpid()} "
                                           f"{time.monotonic():.6f}")


@app.task(name="faults.work", bind=True)
def work(self: Any, seconds: float) -> str:
    """Books its start (S) and its end (E), working `seconds` between them."""
    book("S", self.request.id)
    time.sleep(seconds)
    book("E", self.request.id)
    return str(self.request.id)
