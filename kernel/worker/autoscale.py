"""Autoscaling (``kernel worker --autoscale MAX,MIN``, the remote ``autoscale`` command): the
pool grows by one process or thread while every one is busy and tasks wait, up to MAX, and
shrinks by one after `KEEPALIVE` seconds in which one stayed idle, down to MIN (Celery's
rule). Between two steps the pool keeps the size ``pool_grow`` and ``pool_shrink`` give it."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from kernel.supervision import start_supervised

if TYPE_CHECKING:
    from kernel.worker.worker import Worker

log = logging.getLogger("kernel.worker")

#: seconds between two looks at the load.
INTERVAL = 1.0
#: seconds a slot stays idle before the pool shrinks.
KEEPALIVE = 30.0


class Autoscaler:
    def __init__(self, worker: Worker, maximum: int, minimum: int) -> None:
        self.worker = worker
        self.maximum, self.minimum = maximum, minimum
        self._idle_since: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def bounds(self, maximum: int, minimum: int) -> None:
        self.maximum, self.minimum = maximum, minimum

    def start(self) -> None:
        self._thread = start_supervised("kernel-autoscale", self._run, self._stop)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL):
            self.step()

    def step(self, now: float | None = None) -> int:
        """One look at the load: the pool's change (+1, -1, or what brings it within its
        bounds; 0 for none)."""
        now = time.monotonic() if now is None else now
        size = self.worker.options.concurrency
        running, waiting = self.worker.load()
        if size < self.minimum or size > self.maximum:
            change = (self.minimum if size < self.minimum else self.maximum) - size
        elif running >= size and waiting and size < self.maximum:
            change = 1
        elif running < size and size > self.minimum:
            if self._idle_since is None:
                self._idle_since = now
            change = -1 if now - self._idle_since >= KEEPALIVE else 0
        else:
            change = 0
        if running >= size:
            self._idle_since = None
        if change:
            log.info("autoscale: %d running, %d waiting; pool %d -> %d", running, waiting,
                     size, size + change)
            self.worker.resize(change)
            self._idle_since = now if change < 0 else None
        return change

    def info(self) -> dict[str, Any]:
        """As Celery's stats show it."""
        return {"max": self.maximum, "min": self.minimum,
                "qty": self.worker.options.concurrency}
