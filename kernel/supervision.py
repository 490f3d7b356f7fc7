"""No silent death: the long-lived threads of a worker (the consumer's fetcher, acker, lease
renewer and throttle, the revocation poller, a pool's supervisor) run supervised. An
unexpected exception is logged with its traceback and the thread starts again after a short
pause; one that keeps failing (more than `MAX_FAILURES` times in `WINDOW` seconds) gives up,
and `FATAL` tells the worker to shut down warm and exit non-zero, so that its own supervisor
(systemd, Kubernetes) starts a fresh one instead of keeping a process that looks alive.

`retry_within` is the same patience for one call: a store's request tried again with a backoff
until a deadline (exported to plugins by `kernel.plugin`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

from kernel.errors import KernelError

log = logging.getLogger("kernel.worker")

#: failures within WINDOW seconds after which a thread is not restarted again.
MAX_FAILURES = 5
WINDOW = 60.0
#: seconds before a failed thread's first restart (doubling, up to PAUSE_MAX).
PAUSE = 0.1
PAUSE_MAX = 5.0


class Fatal:
    """Set once, by the first supervised thread that gave up; read by the worker's main loop."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def clear(self) -> None:
        """Forget a failure (a new worker in the same process, as tests start them)."""
        self.reason = None
        self._event.clear()


FATAL = Fatal()


class Failures:
    """Counts one thread's failures in a sliding window: `note` says whether it may go on."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._times: deque[float] = deque()

    def note(self, exc: BaseException) -> bool:
        """Record `exc` (logged with its traceback); False once there were too many, after
        setting `FATAL`."""
        now = time.monotonic()
        self._times.append(now)
        while self._times and self._times[0] < now - WINDOW:
            self._times.popleft()
        if len(self._times) > MAX_FAILURES:
            log.critical("worker thread %s failed %d times in %.0f s (%s: %s); giving up: the "
                         "worker shuts down and exits non-zero", self.name, len(self._times),
                         WINDOW, type(exc).__name__, exc, exc_info=exc)
            FATAL.set(f"thread {self.name} kept failing: {type(exc).__name__}: {exc}")
            return False
        log.error("worker thread %s failed (%s: %s); restarting it", self.name,
                  type(exc).__name__, exc, exc_info=exc)
        return True

    def pause(self) -> float:
        """Seconds to wait before the next restart."""
        return float(min(PAUSE * 2.0 ** (len(self._times) - 1), PAUSE_MAX))


def start_supervised(name: str, target: Callable[[], None],
                     stopping: threading.Event) -> threading.Thread:
    """Run `target` on a daemon thread named `name`, again after it raised (see the module
    docstring), until it returns or `stopping` is set. `target` MUST be restartable: a loop
    that keeps its state on its object, not in its frame."""

    def run() -> None:
        failures = Failures(name)
        while not stopping.is_set():
            try:
                target()
                return
            except Exception as exc:  # noqa: BLE001 - the point: no exception ends it silently
                if stopping.is_set() or not failures.note(exc):
                    return
                stopping.wait(failures.pause())

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


T = TypeVar("T")


def retry_within(timeout: float, attempt: Callable[[], T],
                 retry_on: tuple[type[BaseException], ...],
                 failed: Callable[[BaseException], KernelError]) -> T:
    """`attempt()`, tried again with a backoff (50 ms doubling to 500 ms) while it raises one
    of `retry_on` and `timeout` seconds have not passed; then `failed(last error)` is raised,
    chained to it. For a store that MUST give up within ``connection_timeout``: give each
    attempt a socket timeout well below `timeout`, and retry only what is safe to send twice."""
    deadline = time.monotonic() + timeout
    pause = 0.05
    while True:
        try:
            return attempt()
        except retry_on as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise failed(exc) from exc
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.5)
