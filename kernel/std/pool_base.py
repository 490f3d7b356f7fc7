"""What every std pool shares: the ledger that guarantees one outcome per job, and the guarded call
of the runner that turns a raising runner into a FINISHED outcome carrying the traceback."""

from __future__ import annotations

import logging
import os
import threading
import traceback
from typing import Any

from kernel.interfaces.pool import Job, OnDone, Outcome, OutcomeKind

log = logging.getLogger(__name__)

#: the error of a job whose soft time limit fired in the instant between the runner's return and
#: the pool disarming the limit: the exception then surfaces in pool code, not in the task.
SOFT_LIMIT_LATE = "the soft time limit arrived as the job returned; its return value is lost"


def call_runner(runner: Any, job: Job) -> tuple[Any, str | None]:
    """`(value, None)` from `runner(job)`, or `(None, traceback text)` if the runner raised.

    BaseException too: a runner MUST NOT raise, and a stray SystemExit from a task must not take a
    pool thread or child down without a report."""
    try:
        return runner(job), None
    except BaseException:  # noqa: BLE001 - reported as the job's outcome
        return None, traceback.format_exc()


def finished(job_id: str, value: Any, error: str | None, pid: int | None = None) -> Outcome:
    """The FINISHED outcome of one run (with ``extra["error"]`` when the runner raised)."""
    extra = {"error": error} if error is not None else {}
    return Outcome(job_id, OutcomeKind.FINISHED, value, os.getpid() if pid is None else pid, extra)


class Entry:
    """One submitted job and the callback owed its single outcome."""

    __slots__ = ("data", "job", "on_done", "settled")

    def __init__(self, job: Job, on_done: OnDone) -> None:
        self.job = job
        self.on_done = on_done
        self.settled = False
        #: the pool's own per-job state (prefork: the job, pickled once in `submit`).
        self.data: Any = None


class Ledger:
    """Counts submitted-not-reported jobs and reports each exactly once.

    Several threads may race to report one job (a thread finishing it while `stop` gives it up);
    the first `settle` wins, the others are no-ops. Callbacks run outside every lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = 0

    @property
    def active(self) -> int:
        return self._open

    def add(self, job: Job, on_done: OnDone) -> Entry:
        with self._lock:
            self._open += 1
        return Entry(job, on_done)

    def settle(self, entry: Entry, outcome: Outcome) -> bool:
        """Report `outcome` unless the job was already reported; True if this call reported it."""
        with self._lock:
            if entry.settled:
                return False
            entry.settled = True
            self._open -= 1
        try:
            entry.on_done(outcome)
        except Exception:  # noqa: BLE001 - a failing callback must not break the pool
            log.exception("on_done callback for job %s raised", entry.job.id)
        return True

    def settle_all(self, reports: list[tuple[Entry, Outcome]]) -> None:
        for entry, outcome in reports:
            self.settle(entry, outcome)


def lost(entry: Entry, why: str, pid: int | None = None) -> tuple[Entry, Outcome]:
    """A LOST report for `entry`, to settle once the caller has released its locks."""
    return entry, Outcome(entry.job.id, OutcomeKind.LOST, why, pid)
