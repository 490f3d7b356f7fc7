"""Autoscaling (``kernel worker --autoscale MAX,MIN``, the remote ``autoscale`` command), by
Celery's rule: the pool's size follows the tasks at hand (running, prefetched, and waiting at
the broker where it can count them), kept within [MIN, MAX]. It grows at once, as far as the
backlog asks; it shrinks once `keepalive` seconds passed with the pool larger than the tasks
at hand need (``KERNEL_AUTOSCALE_KEEPALIVE``, 30 s as Celery's), so a short lull between two
bursts keeps the processes warm."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from kernel.errors import ConfigurationError
from kernel.supervision import start_supervised

if TYPE_CHECKING:
    from kernel.worker.worker import Worker

log = logging.getLogger("kernel.worker")

#: seconds between two looks at the load.
INTERVAL = 1.0
#: seconds the pool stays larger than needed before it shrinks.
KEEPALIVE = 30.0


def keepalive() -> float:
    value = os.environ.get("KERNEL_AUTOSCALE_KEEPALIVE")
    try:
        return KEEPALIVE if value is None else max(0.0, float(value))
    except ValueError:
        raise ConfigurationError(f"KERNEL_AUTOSCALE_KEEPALIVE={value!r} is not a number of "
                                 f"seconds") from None


class Autoscaler:
    def __init__(self, worker: Worker, maximum: int, minimum: int) -> None:
        self.worker = worker
        self.maximum, self.minimum = maximum, minimum
        self.keepalive = keepalive()
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
        """One look at the load: the pool's change (0 for none)."""
        now = time.monotonic() if now is None else now
        size = self.worker.options.concurrency
        running, waiting = self.worker.load()
        wanted = max(self.minimum, min(self.maximum, running + waiting))
        change = 0
        if size > self.maximum:  # a new maximum applies at once, the rest after keepalive
            change = self.maximum - size
        elif wanted > size:
            change = wanted - size
        elif wanted < size:
            if self._idle_since is None:
                self._idle_since = now
            if now - self._idle_since >= self.keepalive:
                change = wanted - size
        if wanted >= size:
            self._idle_since = None
        if change:
            log.info("autoscale: %d running, %d waiting; pool %d -> %d", running, waiting,
                     size, size + change)
            self.worker.resize(change)
            self._idle_since = None
        return change

    def info(self) -> dict[str, Any]:
        """As Celery's stats show it."""
        return {"max": self.maximum, "min": self.minimum,
                "qty": self.worker.options.concurrency}
