"""The worker's side of revocation (see `kernel.control`): a step that keeps this worker's
revoked set in step with the log in the result store and filters the consumer by it."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING

from kernel.control import COUNTER, ENTRY, READ_BACK
from kernel.errors import TaskRevokedError
from kernel.interfaces.bootstep import Bootstep, Deps
from kernel.supervision import start_supervised
from kernel.worker.steps import ConsumerStep, ResultsStep

if TYPE_CHECKING:
    from kernel.message import Request
    from kernel.worker.consumer import Consumer

log = logging.getLogger("kernel.worker")


class Revocations(Bootstep["Revocations"]):
    """Keeps this worker's revoked set in step with the log and filters the consumer."""

    name = "revocations"
    requires = (ConsumerStep, ResultsStep)
    #: seconds between two reads of the counter.
    interval = 0.5

    def start(self, deps: Deps) -> Revocations:
        results = deps[ResultsStep]
        self.store = results.store if results is not None else None
        self.consumer: Consumer = deps[ConsumerStep]
        self.revoked: dict[str, float] = {}
        self.seen = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.consumer.filters.append(self.check)  # remote `revoke` commands fill it too
        if self.store is None:
            return self  # no result store: nothing to read revocations from
        self.poll()
        self._thread = start_supervised("kernel-revocations", self._run, self._stop)
        return self

    def check(self, request: Request) -> Exception | None:
        expires = self.revoked.get(request.id)
        if expires is None:
            return None
        if expires < time.time():
            self.revoked.pop(request.id, None)
            return None
        return TaskRevokedError("revoked")

    def add(self, task_id: str, terminate: bool, expires: float) -> bool:
        """Revoke `task_id` here (a remote command); True if it was running and stopped."""
        self.revoked[task_id] = expires
        if terminate and self.consumer.terminate(task_id):
            log.warning("terminated running task %s: revoked", task_id)
            return True
        self.consumer.revoked(task_id, TaskRevokedError("revoked"))
        return False

    def poll(self) -> None:
        assert self.store is not None
        raw = self.store.get(COUNTER)
        newest = int(raw) if raw else 0
        now = time.time()
        for n in range(max(self.seen + 1, newest - READ_BACK + 1), newest + 1):
            data = self.store.get(ENTRY.format(n))
            if data is None:
                continue  # expired
            entry = json.loads(data)
            if entry["expires"] < now:
                continue
            self.add(entry["id"], bool(entry.get("terminate")), entry["expires"])
        if newest > self.seen:
            log.info("revocations read up to #%d; %d task id(s) revoked here", newest,
                     len(self.revoked))
        self.seen = max(self.seen, newest)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001 - keep polling through store outages
                log.error("cannot read revocations from the result store: %s", exc)

    def stop(self) -> None:
        # Joined, not just told: the app closes the store's connections right after.
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
