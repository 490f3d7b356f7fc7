"""``app.control``: commands for workers. Revocation reaches every worker, including those
started after the revoke.

Revocations are a log in the result store: ``revoke`` takes the next number from the atomic
counter ``kernel-revocations`` and writes ``kernel-revoked-<n>`` (id, terminate, expiry). Each
worker's revocations step (`kernel.worker.revocations`) polls the counter (one read per
interval), reads the entries it has not seen and keeps the ids until they expire; a worker
that starts later reads the log from the start. A revoked task that has not started never
runs: it is recorded REVOKED. With ``terminate=True`` a running task is stopped too (a signal
in prefork, a cancel in asyncio).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from kernel import states
from kernel.errors import ConfigurationError, TaskRevokedError
from kernel.interfaces.results import ResultStore

if TYPE_CHECKING:
    from kernel.app import App

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
