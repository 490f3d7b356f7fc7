"""Revocation that reaches every worker, including those started after the revoke.

Revocations are a log in the result store: ``revoke`` takes the next number from the atomic
counter ``kernel-revocations`` and writes ``kernel-revoked-<n>`` (id, terminate, expiry). Each
worker's `Revocations` step polls the counter (one read per interval), reads the entries it has
not seen and keeps the ids until they expire; a worker that starts later reads the log from the
start. A revoked task that has not started never runs: it is recorded REVOKED. With
``terminate=True`` a running task is stopped too (a signal in prefork, a cancel in asyncio).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from kernel import states
from kernel.errors import ConfigurationError, TaskRevokedError
from kernel.interfaces.bootstep import Bootstep
from kernel.interfaces.results import ResultStore

if TYPE_CHECKING:
    from kernel.app import App
    from kernel.message import Request
    from kernel.worker.consumer import Consumer

log = logging.getLogger("kernel.worker")

COUNTER = "kernel-revocations"
ENTRY = "kernel-revoked-{}"
#: how long a revocation is remembered (a task still queued after this long will run).
DEFAULT_EXPIRES = 7 * 86400.0
#: how many of the newest entries a starting worker reads.
READ_BACK = 100_000


def _store(app: App) -> ResultStore:
    store = app.backend.store
    if store is None:
        raise ConfigurationError("revoking needs a result backend (it keeps the revocations); "
                                 "set result_backend")
    return store


def revoke(app: App, task_ids: str | Iterable[str], *, terminate: bool = False,
           expires: float = DEFAULT_EXPIRES) -> None:
    """Revoke tasks on every worker, now and later (see the module docstring)."""
    ids = [task_ids] if isinstance(task_ids, str) else list(task_ids)
    store = _store(app)
    until = time.time() + expires
    for task_id in ids:
        n = store.incr(COUNTER)
        entry = {"id": task_id, "terminate": terminate, "expires": until}
        store.set([(ENTRY.format(n), json.dumps(entry).encode())], expires)
        meta = app.backend.get_meta(task_id)
        if meta is None or meta.get("status") not in states.READY_STATES:
            # A waiting client learns at once; the worker that meets the message writes it too.
            app.backend.store_result(task_id, states.REVOKED, TaskRevokedError("revoked"))


class Control:
    """``app.control``: commands for workers."""

    def __init__(self, app: App) -> None:
        self.app = app

    def revoke(self, task_ids: str | Iterable[str], *, terminate: bool = False,
               expires: float = DEFAULT_EXPIRES) -> None:
        revoke(self.app, task_ids, terminate=terminate, expires=expires)


class Revocations(Bootstep):
    """Keeps this worker's revoked set in step with the log and filters the consumer."""

    name = "revocations"
    requires = ("app", "consumer", "results")
    #: seconds between two reads of the counter.
    interval = 0.5

    def start(self, app: App, consumer: Consumer, results: Any) -> Revocations:  # type: ignore[override]
        self.store = results.store if results is not None else None
        self.consumer = consumer
        self.revoked: dict[str, float] = {}
        self.seen = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self.store is None:
            return self  # no result store: nothing to read revocations from
        self.poll()
        consumer.filters.append(self.check)
        self._thread = threading.Thread(target=self._run, name="kernel-revocations", daemon=True)
        self._thread.start()
        return self

    def check(self, request: Request) -> Exception | None:
        expires = self.revoked.get(request.id)
        if expires is None:
            return None
        if expires < time.time():
            self.revoked.pop(request.id, None)
            return None
        return TaskRevokedError("revoked")

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
            self.revoked[entry["id"]] = entry["expires"]
            if entry.get("terminate") and self.consumer.terminate(entry["id"]):
                log.warning("terminated running task %s: revoked", entry["id"])
            else:
                self.consumer.revoked(entry["id"], TaskRevokedError("revoked"))
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
