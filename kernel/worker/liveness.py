"""``kernel worker --heartbeat-file PATH``: a liveness file for the worker's supervisor. The
step touches PATH every `PERIOD` seconds while the worker is alive (`Consumer.alive`: every
thread runs and the fetcher is not stuck inside the broker client) and no supervised thread
gave up; a probe that finds the file older than a few periods knows the worker is stuck even
though its process runs:

    test $(( $(date +%s) - $(stat -c %Y /tmp/worker.alive) )) -lt 30
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from kernel.interfaces.bootstep import Bootstep, Deps
from kernel.supervision import FATAL
from kernel.worker.consumer import Consumer
from kernel.worker.steps import ConsumerStep

log = logging.getLogger("kernel.worker")

#: seconds between two touches of the file.
PERIOD = 2.0


class Heartbeat:
    """Every `PERIOD` seconds: `beat()` while `alive()` says so (and no supervised thread gave
    up), logging when that changes."""

    def __init__(self, what: str, alive: Callable[[], bool], beat: Callable[[], None]) -> None:
        self.what, self._alive, self._beat = what, alive, beat
        self._stop = threading.Event()
        #: how many times it looked (a test waits on it instead of on the clock).
        self.checks = 0
        beat()
        self._thread = threading.Thread(target=self._run, name="kernel-liveness", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        stuck = False
        while not self._stop.wait(PERIOD):
            if self._alive() and not FATAL.is_set():
                if stuck:
                    log.warning("the worker goes on: %s again", self.what)
                stuck = False
                self._beat()
            elif not stuck:
                stuck = True
                log.error("the worker looks stuck: no longer %s", self.what)
            self.checks += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def touch(path: Path) -> Callable[[], None]:
    def beat() -> None:
        try:
            path.touch()
        except OSError as exc:
            log.error("cannot touch the heartbeat file %s: %s", path, exc)
    return beat


class Liveness(Bootstep[None]):
    """In a prefork child, the beat goes to the worker's process (`ChildLink.alive`), which
    touches the file while every child beats."""

    name = "liveness"
    requires = (ConsumerStep,)

    def start(self, deps: Deps) -> None:
        self.heartbeat: Heartbeat | None = None
        if deps.options.heartbeat_file is None:
            return
        path, link = Path(deps.options.heartbeat_file), deps.options.child_link
        consumer: Consumer = deps[ConsumerStep]
        self.heartbeat = Heartbeat(f"touching {path}", consumer.alive,
                                   touch(path) if link is None else link.alive)

    @property
    def checks(self) -> int:
        return self.heartbeat.checks if self.heartbeat is not None else 0

    def stop(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()
