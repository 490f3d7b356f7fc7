"""The kit of the green pools (kernel-gevent, kernel-eventlet): a `GreenPool` that runs each job
in a green thread of the worker's own process, built on the few primitives a green library
gives (`GreenLibrary`), and `Patcher`, the monkey-patching done once, early, or refused.

Time limits reach a job two ways. A job that yields (waits on a socket, sleeps) gets its
exception from the hub at the deadline, as green libraries' own timeouts do. A job that never
yields (a CPU loop) keeps the hub from running at all; for it the pool arms ``SIGALRM``
(`signal.setitimer`) at the earliest deadline: the handler runs in the main thread, in the
green thread that holds it, and raises there, between two bytecodes. What neither reaches is a
job inside one long C call (a regular expression, a C extension): it gets its exception when
the call returns. Async jobs run on one event loop the pool keeps, in a green thread of its
own; their hard limit and `terminate_job` cancel them, and they have no soft limit.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import signal
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kernel.errors import ConfigurationError, SoftTimeLimitExceeded
from kernel.interfaces.pool import Job, OnDone, Outcome, OutcomeKind, Runner
from kernel.pooling import SOFT_LIMIT_LATE, Entry, StdPool, finished

if TYPE_CHECKING:
    import asyncio

#: seconds after a deadline that the alarm fires: the hub has the first go at a job that
#: yields, the alarm is for one that does not.
ALARM_SLACK = 0.02
#: the event loop async jobs run on, in a green thread of its own (`GreenPool._event_loop`).
_LOOP: asyncio.AbstractEventLoop | None = None
#: seconds between two hard-limit exceptions for a job that catches the first and runs on.
HARD_RETRY = 1.0


class Stopped(BaseException):
    """Raised inside a job the pool stops (hard limit, terminate, cold stop). A BaseException,
    so that a task's ``except Exception`` does not take it for its own failure."""

    def __init__(self, kind: OutcomeKind, why: str) -> None:
        super().__init__(why)
        self.kind = kind
        self.why = why


class GreenLibrary(ABC):
    """What a green library gives the pool. Every method is called in the patched process."""

    #: the library's distribution name ("gevent"), for messages and `info`.
    name: str

    @abstractmethod
    def spawn(self, fn: Callable[[], None]) -> Any:
        """Start a green thread running `fn` soon; return it (a greenlet)."""

    @abstractmethod
    def call_later(self, seconds: float, fn: Callable[[], None]) -> Callable[[], None]:
        """Call `fn` in the hub after `seconds`; return what cancels the call."""

    @abstractmethod
    def current(self) -> Any:
        """The green thread running now (``greenlet.getcurrent()``)."""

    @abstractmethod
    def patch(self) -> str:
        """Monkey-patch the process (the plugin's `Patcher`); what it did."""


class Slot:
    """One running job: its green thread, its deadlines and what was sent to it."""

    __slots__ = ("entry", "glet", "soft_at", "hard_at", "soft_sent", "in_runner", "cancels",
                 "future", "done")

    def __init__(self, entry: Entry) -> None:
        self.entry = entry
        self.glet: Any = None
        job = entry.job
        now = time.monotonic()
        # Async jobs have no soft limit: an exception cannot be thrown into a coroutine.
        soft = None if job.is_async else job.soft_time_limit
        self.soft_at = None if soft is None else now + soft
        self.hard_at = None if job.hard_time_limit is None else now + job.hard_time_limit
        self.soft_sent = False
        #: the runner is running (not the pool's code before or after it).
        self.in_runner = False
        self.cancels: list[Callable[[], None]] = []
        #: the future of an async job on the pool's loop.
        self.future: Any = None
        self.done = False

    def due(self, now: float) -> BaseException | None:
        """The exception this job is owed at `now`, if any, marked as sent."""
        if not self.in_runner or self.done:
            return None
        if self.hard_at is not None and now >= self.hard_at:
            self.hard_at = now + HARD_RETRY  # again, if the job catches it and runs on
            return Stopped(OutcomeKind.TIMEOUT, "hard time limit")
        if self.soft_at is not None and not self.soft_sent and now >= self.soft_at:
            self.soft_sent = True
            return SoftTimeLimitExceeded()
        return None


class GreenPool(StdPool):
    """Jobs run in up to `concurrency` green threads; `grow`/`shrink` change that number.

    A subclass names its library in `library` and declares its capabilities."""

    library: GreenLibrary

    def __init__(self, concurrency: int, **limits: int | None) -> None:
        super().__init__(concurrency, **limits)
        self._kind = self.library.name
        self._pending: deque[Entry] = deque()
        self._running: dict[Any, Slot] = {}  # green thread -> its job
        self._idle = threading.Event()
        self._idle.set()
        self._runner: Runner | None = None
        self._arun: Any = None
        self._patched = ""
        self._deadlines: list[tuple[float, int, Slot]] = []
        self._order = itertools.count()
        self._alarm_at: float | None = None
        self._previous_alarm: Any = None
        self._alarms = False
        self._in_heap = False

    # ------------------------------------------------------------------ Pool API

    def start(self, runner: Runner) -> None:
        self._refuse_restart(self._runner is not None)
        self._patched = self.library.patch()
        self._runner = runner
        self._arun = getattr(runner, "arun", None)
        self._alarms = self._take_alarm()

    def submit(self, job: Job, on_done: OnDone) -> None:
        self._refuse_unless_open(self._runner is not None)
        entry = self._ledger.add(job, on_done)
        if len(self._running) < self.concurrency:
            self._launch(entry)
        else:
            self._pending.append(entry)

    def stop(self, wait: bool = True, timeout: float | None = None) -> None:
        reports = self._close(self._pending)
        if reports is None:
            return
        self._ledger.settle_all(reports)
        if wait:
            self._idle.wait(timeout)
        for slot in list(self._running.values()):
            self._halt(slot, OutcomeKind.LOST, "the pool stopped while the job ran")
        if self._alarms:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous_alarm)
            self._alarms = False

    def terminate_job(self, job_id: str) -> bool:
        found = [slot for slot in self._running.values() if slot.entry.job.id == job_id]
        for slot in found:
            self._halt(slot, OutcomeKind.TERMINATED, "terminated on request")
        return bool(found)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "running": len(self._running), "patched": self._patched}

    # ------------------------------------------------------------------ green threads

    def _resize(self, delta: int) -> None:
        self.concurrency += delta
        while self._pending and len(self._running) < self.concurrency and not self._closing:
            self._launch(self._pending.popleft())

    def _launch(self, entry: Entry) -> None:
        slot = Slot(entry)
        self._idle.clear()
        slot.glet = self.library.spawn(lambda: self._work(slot))
        self._running[slot.glet] = slot

    def _work(self, slot: Slot) -> None:
        try:
            outcome = self._execute(slot)
        finally:
            slot.done = True
            for cancel in slot.cancels:
                cancel()
            del self._running[slot.glet]
        self._ledger.settle(slot.entry, outcome)
        if self._pending and len(self._running) < self.concurrency and not self._closing:
            self._launch(self._pending.popleft())
        elif not self._running:
            self._idle.set()

    def _execute(self, slot: Slot) -> Outcome:
        job = slot.entry.job
        if slot.entry.settled:  # stopped or terminated before it started
            return Outcome(job.id, OutcomeKind.LOST, "reported before it started", os.getpid())
        self._arm(slot)
        try:
            try:
                slot.in_runner = True
                try:
                    if job.is_async and self._arun is not None:
                        value = self._await(slot)
                    else:
                        assert self._runner is not None
                        value = self._runner(job)
                finally:
                    slot.in_runner = False
            except (Stopped, SoftTimeLimitExceeded):
                raise
            except BaseException:  # noqa: BLE001 - a raising runner is reported, not raised
                return finished(job.id, None, traceback.format_exc())
        except Stopped as stop:
            return Outcome(job.id, stop.kind, stop.why, os.getpid())
        except SoftTimeLimitExceeded:
            # Raised in the few bytecodes between the runner's return and in_runner's reset.
            return finished(job.id, None, SOFT_LIMIT_LATE)
        return finished(job.id, value, None)

    def _await(self, slot: Slot) -> Any:
        """An async job, awaited on the pool's event loop while this green thread waits."""
        import asyncio  # only where async jobs run: a light entry module imports this one

        loop = self._event_loop()
        slot.future = asyncio.run_coroutine_threadsafe(self._arun(slot.entry.job), loop)
        try:
            return slot.future.result()
        except BaseException:
            slot.future.cancel()  # the coroutine is cancelled on its loop
            raise

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        # One for the process, made on the first async job: while it runs, asyncio counts the
        # main thread as running a loop, so a second one could not run (nor asyncio.run() in
        # a sync task).
        global _LOOP
        if _LOOP is None:
            import asyncio

            _LOOP = asyncio.new_event_loop()
            self.library.spawn(_LOOP.run_forever)
        return _LOOP

    def _halt(self, slot: Slot, kind: OutcomeKind, why: str) -> None:
        """Report the job now and raise `Stopped` in it at its next switch; its slot frees
        when it has unwound."""
        if self._ledger.settle(slot.entry, Outcome(slot.entry.job.id, kind, why, os.getpid())):
            self.library.call_later(0, lambda: self._throw(slot, Stopped(kind, why)))

    def _throw(self, slot: Slot, exc: BaseException) -> None:
        # In the hub, so the job waits (one that held the CPU would keep the hub from running);
        # only into the runner: one not started yet sees its report and does not run.
        if slot.in_runner and not slot.done and not slot.glet.dead:
            slot.glet.throw(exc)

    # ------------------------------------------------------------------ time limits

    def _arm(self, slot: Slot) -> None:
        """The deadlines of a job that starts: the hub's timers, and the alarm."""
        now = time.monotonic()
        for at in (slot.soft_at, slot.hard_at):
            if at is not None:
                slot.cancels.append(self.library.call_later(at - now,
                                                            lambda: self._expire(slot)))
                self._watch(at, slot)

    def _expire(self, slot: Slot) -> None:
        """In the hub, at a deadline: the job waits, so it is thrown its exception."""
        exc = slot.due(time.monotonic())
        if exc is None:
            return
        if isinstance(exc, Stopped):
            entry = slot.entry
            timeout = Outcome(entry.job.id, OutcomeKind.TIMEOUT, "hard time limit", os.getpid())
            # Reported now, should the job catch the exception and run on; from a green
            # thread, not from the hub, which must never block.
            self.library.spawn(lambda: self._settle(entry, timeout))
            slot.cancels.append(self.library.call_later(HARD_RETRY, lambda: self._expire(slot)))
            self._watch(slot.hard_at, slot)
        self._throw(slot, exc)

    def _settle(self, entry: Entry, outcome: Outcome) -> None:
        self._ledger.settle(entry, outcome)

    def _take_alarm(self) -> bool:
        """SIGALRM for the jobs that never yield, unless it is someone else's or this is not
        the main thread (then such a job runs past its limits)."""
        try:
            previous = signal.getsignal(signal.SIGALRM)
            if previous not in (signal.SIG_DFL, signal.SIG_IGN, None):
                return False
            signal.signal(signal.SIGALRM, self._on_alarm)
        except ValueError:  # not the main thread
            return False
        self._previous_alarm = previous
        return True

    def _watch(self, at: float | None, slot: Slot) -> None:
        """The alarm fires after `at` unless it fires earlier already."""
        if not self._alarms or at is None:
            return
        self._in_heap = True  # the alarm's handler may interrupt this very line
        try:
            heapq.heappush(self._deadlines, (at, next(self._order), slot))
        finally:
            self._in_heap = False
        if self._alarm_at is None or at < self._alarm_at:
            self._set_alarm(at + ALARM_SLACK)

    def _set_alarm(self, at: float) -> None:
        self._alarm_at = at
        signal.setitimer(signal.ITIMER_REAL, max(at - time.monotonic(), 1e-4))

    def _on_alarm(self, signum: int, frame: Any) -> None:
        """In the main thread, in whatever green thread runs: the hub if every job waits
        (their timers do the work), else a job that holds the CPU, which gets its exception
        here, where it is."""
        now = time.monotonic()
        self._alarm_at = None
        if self._in_heap:
            self._set_alarm(now + ALARM_SLACK)
            return
        heap = self._deadlines
        while heap and (heap[0][2].done or heap[0][0] not in (heap[0][2].soft_at,
                                                              heap[0][2].hard_at)
                        or heap[0][0] == heap[0][2].soft_at and heap[0][2].soft_sent):
            heapq.heappop(heap)  # ended, delivered, or moved on
        slot = self._running.get(self.library.current())
        exc = None if slot is None else slot.due(now)
        if slot is not None and isinstance(exc, Stopped):
            heapq.heappush(heap, (slot.hard_at or now, next(self._order), slot))
        if heap:
            # An overdue job not delivered yet waits behind one that holds the CPU: again soon.
            self._set_alarm(max(heap[0][0], now) + ALARM_SLACK)
        if exc is not None:
            raise exc


class Patcher:
    """``patch()`` of a green pool's plugin: monkey-patches the process once, before anything
    else runs, and refuses with a sentence once threads or sockets exist (patched then, they
    would hang or break: a lock held across the patch, a client's socket left blocking)."""

    def __init__(self, library: str, apply: Callable[[], None], applied: Callable[[], bool],
                 caveat: Callable[[], str | None] = lambda: None) -> None:
        self.library = library
        self._apply = apply
        self._applied = applied
        #: what is wrong with the installed library, if anything (a version known to
        #: misbehave): logged as a warning and shown in the banner.
        self._caveat = caveat
        self._note: str | None = None

    def __call__(self) -> str:
        if self._note is None:
            from importlib.metadata import PackageNotFoundError, version

            try:
                release = version(self.library)
            except PackageNotFoundError:
                release = "?"
            name = f"{self.library} {release}"
            if self._applied():
                self._note = f"{name}: the process was monkey-patched before kernel started"
            else:
                problem = too_late()
                if problem is not None:
                    raise ConfigurationError(
                        f"{self.library} must monkey-patch the process before any thread or "
                        f"connection exists, but {problem}: start the worker with `kernel "
                        f"worker -P {self.library}` (it patches before importing the app), or "
                        f"call kernel_{self.library}.patch() first thing in your program")
                self._apply()
                self._note = (f"{name}: monkey-patched before the app, its broker client or "
                              f"any thread existed")
            caveat = self._caveat()
            if caveat is not None:
                logging.getLogger("kernel.worker").warning("%s", caveat)
                self._note += f"; WARNING: {caveat}"
        return self._note


def too_late() -> str | None:
    """Why this process can no longer be monkey-patched safely, or None."""
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if threads:
        return f"{len(threads)} thread(s) run already ({', '.join(sorted(threads)[:3])})"
    sockets = _open_sockets()
    if sockets:
        return f"{sockets} socket(s) are open already"
    return None


def _open_sockets() -> int:
    """Sockets this process holds (Linux: /proc/self/fd; elsewhere not known: 0)."""
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return 0
    count = 0
    for fd in fds:
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            continue
    return count
