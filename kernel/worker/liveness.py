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
from pathlib import Path

from kernel.interfaces.bootstep import Bootstep, Deps
from kernel.supervision import FATAL
from kernel.worker.consumer import Consumer
from kernel.worker.steps import ConsumerStep

log = logging.getLogger("kernel.worker")

#: seconds between two touches of the file.
PERIOD = 2.0


class Liveness(Bootstep[None]):
    name = "liveness"
    requires = (ConsumerStep,)

    def start(self, deps: Deps) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: how many times it looked (a test waits on it instead of on the clock).
        self.checks = 0
        if deps.options.heartbeat_file is None:
            return
        self.path = Path(deps.options.heartbeat_file)
        self.consumer: Consumer = deps[ConsumerStep]
        self._touch()
        self._thread = threading.Thread(target=self._run, name="kernel-liveness", daemon=True)
        self._thread.start()

    def _touch(self) -> None:
        try:
            self.path.touch()
        except OSError as exc:
            log.error("cannot touch the heartbeat file %s: %s", self.path, exc)

    def _run(self) -> None:
        stuck = False
        while not self._stop.wait(PERIOD):
            if self.consumer.alive() and not FATAL.is_set():
                if stuck:
                    log.warning("the worker goes on: %s is touched again", self.path)
                stuck = False
                self._touch()
            elif not stuck:
                stuck = True
                log.error("the worker looks stuck: %s is no longer touched", self.path)
            self.checks += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
