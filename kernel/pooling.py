"""What every pool of the kernel's shares, the std pools and the green pools' kit
(`kernel.greenpool`) alike: the ledger that guarantees one outcome per job, the guarded call of
the runner that turns a raising runner into a FINISHED outcome carrying the traceback, and
`StdPool`, the bookkeeping around them (start/stop state, resizing, `info`)."""

from __future__ import annotations

import logging
import os
import threading
import traceback
from abc import abstractmethod
from collections import deque
from collections.abc import Collection
from typing import Any

from kernel.interfaces.pool import Job, OnDone, Outcome, OutcomeKind, Pool

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

    def drop(self, entry: Entry) -> None:
        """Forget a job that will never be reported (withdrawn before it started)."""
        with self._lock:
            if not entry.settled:
                entry.settled = True
                self._open -= 1

    def settle_all(self, reports: list[tuple[Entry, Outcome]]) -> None:
        for entry, outcome in reports:
            self.settle(entry, outcome)


#: a job and the outcome owed it, to settle once the pool's locks are released.
Report = tuple[Entry, Outcome]


def lost(entry: Entry, why: str, pid: int | None = None) -> Report:
    """A LOST report for `entry`, to settle once the caller has released its locks."""
    return entry, Outcome(entry.job.id, OutcomeKind.LOST, why, pid)


class StdPool(Pool):
    """The std pools' common part: the ledger behind `active`, the closing flag `stop` sets,
    `grow`/`shrink` through the pool's own `_resize`, and `info`.

    Subclasses name themselves in `_kind` (for errors) and implement `_resize`."""

    #: the pool's name in error messages and thread names ("threads", "prefork", ...).
    _kind: str

    def __init__(self, concurrency: int, **limits: int | None) -> None:
        # `limits`: Pool's max_tasks_per_child / max_memory_per_child.
        super().__init__(concurrency, **limits)
        self._ledger = Ledger()
        self._closing = False  # stop was called: no more jobs
        # One resize at a time, so two shrinks cannot both pass the bounds check.
        self._resizing = threading.Lock()

    @property
    def active(self) -> int:
        return self._ledger.active

    def grow(self, n: int = 1) -> None:
        with self._resizing:
            self._resize(n)

    def shrink(self, n: int = 1) -> None:
        with self._resizing:
            if n < 1 or self.concurrency - n < 1:
                raise ValueError(
                    f"cannot shrink the {self._kind} pool by {n} from a concurrency of "
                    f"{self.concurrency}: at least one must remain"
                )
            self._resize(-n)

    def info(self) -> dict[str, Any]:
        recycles = self.capabilities.recycle_children  # limits a pool ignores are not shown
        return {
            "implementation": f"{type(self).__module__}:{type(self).__name__}",
            "max-concurrency": self.concurrency,
            "processes": self._pids(),
            "max-tasks-per-child": self.max_tasks_per_child if recycles else None,
            "max-memory-per-child": self.max_memory_per_child if recycles else None,
        }

    @abstractmethod
    def _resize(self, delta: int) -> None:
        """Add `delta` (negative: remove) to `concurrency` and act on it."""

    def _pids(self) -> list[int]:
        """The processes running jobs (for `info`)."""
        return [os.getpid()]

    def _refuse_restart(self, started: bool) -> None:
        if started:
            raise RuntimeError(f"this {self._kind} pool is already started")

    def _refuse_unless_open(self, started: bool) -> None:
        if not started or self._closing:
            raise RuntimeError(
                f"the {self._kind} pool is not running: call start(runner) before submit, "
                f"and do not submit after stop"
            )

    def _withdraw_from(self, lock: Any, pending: deque[Entry],
                       job_ids: Collection[str] | None) -> list[Job]:
        """`withdraw` for a pool whose not-started jobs wait in `pending`, guarded by `lock`."""
        with lock:
            taken = [e for e in pending if job_ids is None or e.job.id in job_ids]
            for entry in taken:
                pending.remove(entry)
        for entry in taken:
            self._ledger.drop(entry)
        return [entry.job for entry in taken]

    def _close(self, pending: deque[Entry]) -> list[Report] | None:
        """For `stop`, under the pool's lock: mark the pool closing and give up the jobs not
        started (their reports, to settle after the lock); None if stop already ran."""
        if self._closing:
            return None
        self._closing = True
        reports = [lost(e, "the pool stopped before the job started") for e in pending]
        pending.clear()
        return reports
