"""The prefork pool's parent side: children, dispatch, time limits, recycling, shutdown.

Children start from a clean state: they are forked by multiprocessing's fork server (a process
started fresh, with no thread, socket or lock of the worker), and get the runner by pickle.

The parent keeps the pending queue and sends a job only to an idle child, over that child's own
duplex pipe, so it always knows which job each child runs. `submit` sends directly when a child is
idle; otherwise one supervisor thread does, as soon as a child reports. The supervisor waits on
every child's pipe and process sentinel plus a wake-up pipe, with a timeout set by the nearest hard
deadline. It kills a child past its hard limit (TIMEOUT) or on `terminate_job` (TERMINATED),
reports LOST for a child that died mid-job, and starts a replacement for every child that ends.

With `start_consumers`, each child runs a consumer of its own instead (see `child.consume`) and
tells the parent only which job it runs: the parent keeps that one entry per child, so the same
supervisor reports its death, kills it at the hard limit and on `terminate_job`, and replaces it.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import multiprocessing
import os
import pickle
import selectors
import threading
import time
from collections import deque
from collections.abc import Callable, Collection
from functools import partial
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any

from kernel.errors import ConfigurationError
from kernel.interfaces.pool import ChildMain, Job, OnDone, Outcome, OutcomeKind, Runner
from kernel.pooling import Entry, Report, StdPool, finished, lost
from kernel.std.pools import PREFORK_CAPABILITIES
from kernel.std.pools.prefork import child as child_module
from kernel.std.pools.prefork import consumers
from kernel.supervision import Failures

log = logging.getLogger(__name__)

#: seconds `start` waits for the first children to load the runner.
START_TIMEOUT = 60.0
#: seconds children get to exit on request at `stop` before they are killed.
EXIT_GRACE = 3.0
#: seconds past a job's hard limit a consumer child gets to give back the messages it holds
#: (it asks to be stopped when done) before it is killed regardless.
HARD_GRACE = 2.0

_EXIT = pickle.dumps(None)  # tells a child to exit (a consumer child: after its job)
_COLD = pickle.dumps("cold")  # tells a consumer child to give its job back and exit now


#: what a consumer child says of its jobs (see `PreforkPool._on_child_job`).
_CHILD_JOB = frozenset("BEKX")
_QUESTIONS = itertools.count(1)


def _context() -> BaseContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")  # Windows: every child is a fresh interpreter
    ctx = multiprocessing.get_context("forkserver")
    # Imported once in the fork server rather than in every child (a no-op once it runs).
    from multiprocessing import forkserver

    preload = list(getattr(forkserver._forkserver, "_preload_modules", None) or [])
    wanted = [name for name in (child_module.__name__, consumers.__name__) if name not in preload]
    if wanted:
        ctx.set_forkserver_preload([*preload, *wanted])
    return ctx


class _Child:
    __slots__ = ("conn", "deadline", "entry", "index", "pid", "process", "ready", "retiring",
                 "slot", "standing", "started")

    def __init__(self, process: BaseProcess, conn: Connection,
                 slot: tuple[consumers.Slot, str] | None = None) -> None:
        self.process = process
        self.conn = conn
        self.slot = slot  # a consumer child's job slot and the path of its file
        self.started = time.monotonic()
        self.pid: int = process.pid or 0
        self.ready = False  # loaded the runner; may receive jobs
        self.retiring = False  # will exit: receives no job
        self.entry: Entry | None = None  # the job it runs
        self.deadline: float | None = None  # monotonic hard deadline of that job
        self.standing = 0  # standing questions it was started with
        self.index = 0  # a consumer child's number, 1 to concurrency (log files' %i)


class PreforkPool(StdPool):
    capabilities = PREFORK_CAPABILITIES
    _kind = "prefork"

    def __init__(self, concurrency: int, **limits: int | None) -> None:
        super().__init__(concurrency, **limits)
        for name, value in limits.items():  # unknown names were refused by Pool.__init__
            if value is not None:
                self._check_positive(name, value)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a child got ready, free or gone
        self._children: list[_Child] = []
        self._doomed: list[_Child] = []  # to kill once their stopped jobs are reported
        self._idle: deque[_Child] = deque()
        self._pending: deque[Entry] = deque()
        self._deadlines = 0  # busy children with a hard deadline
        self._next_wake = float("inf")  # when the supervisor wakes at the latest
        self._reconcile = False  # children to start or retire
        self._respawn_at = 0.0
        self._start_failures = 0
        self._starting = False
        self._fatal: str | None = None  # why the first children could not start
        self._shutdown = False  # the supervisor exits once every child is gone...
        self._abandon = False  # ...or at once, when children outlive even SIGKILL
        self._runner_data: bytes | None = None
        #: start_consumers: what a job a child began and never ended is reported to.
        self._orphans: OnDone | None = None
        self._cold = False  # consumer children were told to stop cold
        self._gone: Callable[[list[tuple[Any, str, int]]], None] | None = None
        #: open questions (ask_consumers): ticket → the answers so far.
        self._answers: dict[int, list[Any]] = {}
        #: standing questions: changes a consumer child gets before its first job.
        self._standing: list[Any] = []
        self._done_gone = 0  # jobs ended by consumer children that exited
        self._ctx: BaseContext | None = None
        # Opened by start: every child's pipe and sentinel, and a wake-up pipe.
        self._selector: selectors.BaseSelector
        self._wake_r = self._wake_w = -1
        self._supervisor: threading.Thread | None = None

    # ------------------------------------------------------------------ Pool API

    def start(self, runner: Runner) -> None:
        self._begin(runner)

    def start_consumers(self, child: ChildMain, on_done: OnDone,
                        on_gone: Callable[[list[tuple[Any, str, int]]], None]) -> None:
        self._orphans, self._gone = on_done, on_gone
        self._begin(child)

    def _begin(self, runner: Runner | ChildMain) -> None:
        self._refuse_restart(self._runner_data is not None)
        try:
            self._runner_data = pickle.dumps(runner, pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise TypeError(
                f"the prefork pool sends the runner to each child by pickle, and {runner!r} "
                f"cannot be pickled ({exc}); use a module-level function or class instance"
            ) from exc
        self._ctx = _context()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._starting = True
        atexit.register(self._at_exit)
        try:
            for _ in range(self.concurrency):
                self._add(self._spawn())
        except BaseException:
            self.stop(wait=False)
            raise
        self._supervisor = threading.Thread(
            target=self._supervise, name="kernel-prefork-supervisor", daemon=True
        )
        self._supervisor.start()
        with self._lock:
            ok = self._changed.wait_for(
                lambda: (
                    self._fatal is not None
                    or sum(c.ready for c in self._children) >= self.concurrency
                ),
                START_TIMEOUT,
            )
            fatal = self._fatal
            self._starting = False
        if fatal is not None or not ok:
            self.stop(wait=False)
            why = fatal or f"they did not report ready within {START_TIMEOUT:.0f} s"
            raise ConfigurationError(
                f"prefork children cannot start: {why}\nThe runner is unpickled in each child: "
                f"its module must be importable there (from the worker's working directory)."
            )

    def submit(self, job: Job, on_done: OnDone) -> None:
        try:
            data = child_module.encode_job(job)
        except Exception as exc:
            raise TypeError(
                f"job {job.id} ({job.name}) cannot be sent to a prefork child: its payload "
                f"cannot be pickled ({exc})"
            ) from exc
        with self._lock:
            self._refuse_unless_open(self._runner_data is not None)
            entry = self._ledger.add(job, on_done)
            entry.data = data
            self._pending.append(entry)
            wake = self._dispatch()
        if wake:
            self._wake()

    def stop(self, wait: bool = True, timeout: float | None = None) -> None:
        with self._lock:
            reports = self._close(self._pending)
            if reports is None:
                if not wait and self._orphans is not None and not self._cold:
                    self._stop_consumers(warm=False)  # a warm stop goes cold
                    self._changed.notify_all()
                return
            while self._idle:
                self._retire(self._idle.popleft())
            if self._orphans is not None:
                self._stop_consumers(warm=wait)
            if wait and self._supervisor is not None:
                # A consumer child exits once its job is done (the slot's jobs have no entry).
                self._changed.wait_for(
                    lambda: all(c.entry is None for c in self._children) if self._orphans is None
                    else not self._children or self._cold, timeout
                )
            self._shutdown = True
            # Consumer children settle their own jobs as they stop; what one still holds when
            # it is gone (killed below after EXIT_GRACE) is reported LOST by the supervisor.
            for c in self._children if self._orphans is None else ():
                if c.entry is not None:
                    reports.append(lost(c.entry, "the pool stopped while the job ran", c.pid))
                    self._stop_job(c)
                elif not wait or not c.ready:
                    self._kill(c)
                elif not c.retiring:
                    self._retire(c)
        self._settle(reports)
        self._wake()
        atexit.unregister(self._at_exit)
        supervisor = self._supervisor
        if supervisor is threading.current_thread():
            return  # stop from an on_done callback: the supervisor finishes once children exit
        if supervisor is not None:
            # Consumer children give their prefetched messages back and flush acks first.
            supervisor.join(EXIT_GRACE * (3 if self._orphans is not None else 1))
            if supervisor.is_alive():  # a child ignores the exit request: kill it
                with self._lock:
                    for c in self._children:
                        self._kill(c)
                supervisor.join(EXIT_GRACE)
            if supervisor.is_alive():  # not even SIGKILL ended it (stuck in the kernel)
                self._abandon = True
                supervisor.join()
        self._reap_all()

    def terminate_job(self, job_id: str) -> bool:
        reports: list[Report] = []
        with self._lock:
            for c in self._children:
                if c.entry is not None and c.entry.job.id == job_id:
                    why = "terminated on request"
                    reports.append((c.entry, Outcome(job_id, OutcomeKind.TERMINATED, why, c.pid)))
                    self._stop_job(c)
            for entry in [e for e in self._pending if e.job.id == job_id]:
                self._pending.remove(entry)
                outcome = Outcome(job_id, OutcomeKind.TERMINATED, "terminated before it started")
                reports.append((entry, outcome))
        self._settle(reports)
        return bool(reports)

    def consumers_alive(self, within: float) -> bool:
        now, wall = time.monotonic(), time.time()
        with self._lock:
            return all(c.slot is None or now - c.started < within
                       or wall - c.slot[0].last_beat() < within
                       for c in self._children if not c.retiring)

    def ask_consumers(self, question: Any, timeout: float, *, standing: bool = False,
                      ) -> list[Any]:
        ticket = next(_QUESTIONS)
        message = pickle.dumps(("Q", ticket, question), pickle.HIGHEST_PROTOCOL)
        with self._lock:
            if standing:
                # A child still starting would get the change only once it consumes (its
                # "R"), perhaps after its first job: wait for it to be ready, so it is asked
                # below like the others. Every child started after this gets it at its start.
                self._changed.wait_for(lambda: all(
                    c.ready or c.retiring or c.slot is None for c in self._children), timeout)
                self._standing.append(question)
            asked = 0
            self._answers[ticket] = []
            for c in self._children:
                if c.ready and not c.retiring and c.slot is not None:
                    try:
                        c.conn.send_bytes(message)
                        asked += 1
                    except OSError:  # gone: its sentinel tells the supervisor
                        pass
            self._changed.wait_for(lambda: len(self._answers[ticket]) >= asked, timeout)
            return self._answers.pop(ticket)

    @property
    def active(self) -> int:
        if self._orphans is None:
            return super().active
        # Consumer children tell a job in a message (the parent holds an entry) or in their
        # slot only.
        with self._lock:
            return sum(1 for c in self._children if c.entry is not None
                       or (c.slot is not None and c.slot[0].running()))

    def restart(self) -> None:
        with self._lock:
            for c in self._live():
                self._retire(c)  # each after its job; `_adjust` starts the replacements
        self._wake()

    def consumers_processed(self) -> int:
        with self._lock:
            return self._done_gone + sum(c.slot[0].done() for c in self._children
                                         if c.slot is not None)

    def _stop_consumers(self, warm: bool) -> None:
        """Under the lock: ask every consumer child to stop (warm: after its job; cold: now,
        giving its job back). Cold ones get EXIT_GRACE before they are killed."""
        self._cold = self._cold or not warm
        message = _EXIT if warm else _COLD
        for c in self._children:
            c.retiring = True
            if c.ready:
                try:
                    c.conn.send_bytes(message)
                except OSError:  # already gone
                    pass
        self._reconcile = True

    def withdraw(self, job_ids: Collection[str] | None = None) -> list[Job]:
        return self._withdraw_from(self._lock, self._pending, job_ids)

    # ------------------------------------------------------------------ under the lock

    def _dispatch(self) -> bool:
        """Send pending jobs to idle children; True if the supervisor must wake for a deadline."""
        wake = False
        while self._pending and self._idle:
            c = self._idle.popleft()
            entry = self._pending.popleft()
            try:
                c.conn.send_bytes(entry.data)
            except OSError:  # the child just died: its sentinel tells the supervisor
                self._pending.appendleft(entry)
                c.retiring = True
                continue
            c.entry = entry
            limit = entry.job.hard_time_limit
            if limit is not None:
                c.deadline = time.monotonic() + limit
                self._deadlines += 1
                wake = wake or c.deadline < self._next_wake
        return wake

    def _free(self, c: _Child) -> Entry | None:
        """Forget `c`'s job (it finished, or is being reported otherwise); returns it."""
        entry, c.entry = c.entry, None
        if c.deadline is not None:
            c.deadline = None
            self._deadlines -= 1
        self._changed.notify_all()
        return entry

    def _stop_job(self, c: _Child) -> None:
        """Forget `c`'s job, which the caller reports, and kill `c` once it has (`_settle`):
        a consumer child's job is recorded before its message can go to another consumer."""
        self._free(c)
        c.retiring = True  # takes no job meanwhile
        self._reconcile = True
        self._doomed.append(c)

    def _settle(self, reports: list[Report]) -> None:
        """Outside the lock: report, then kill the children whose jobs were stopped."""
        self._ledger.settle_all(reports)
        if self._doomed:
            with self._lock:
                doomed, self._doomed = self._doomed, []
                for c in doomed:
                    self._kill(c)

    def _retire(self, c: _Child) -> None:
        """Ask `c` to exit: now if it is idle, after its job if busy, once ready if starting."""
        c.retiring = True
        self._reconcile = True
        if (c.entry is None or self._orphans is not None) and c.ready:
            try:
                c.conn.send_bytes(_EXIT)
            except OSError:  # already gone
                pass

    def _take_back(self, c: _Child) -> bool:
        """`c` is ready for a job: retire it if it must go, else give it one; True if the
        supervisor must wake for a deadline."""
        if c.retiring or self._closing:
            self._retire(c)
            return False
        if self._orphans is not None:
            return False  # a consumer child takes no job from here
        self._idle.append(c)
        return self._dispatch()

    def _kill(self, c: _Child) -> None:
        c.retiring = True
        self._reconcile = True
        try:
            c.process.kill()
        except (OSError, ValueError):  # already gone
            pass

    def _resize(self, delta: int) -> None:
        with self._lock:
            self.concurrency += delta
            self._reconcile = True
        self._wake()

    def _pids(self) -> list[int]:
        with self._lock:
            return [c.pid for c in self._children if not c.retiring]

    # ------------------------------------------------------------------ supervisor thread

    def _wake(self) -> None:
        with self._lock:  # not while _close_fds closes it
            if self._wake_w < 0:
                return
            try:
                os.write(self._wake_w, b"\0")
            except BlockingIOError:  # full: a wake-up is already pending
                pass

    def _supervise(self) -> None:
        handlers: dict[str, Callable[[_Child], None]] = {
            "conn": self._on_message,
            "sentinel": self._on_exit,
        }
        failures = Failures("kernel-prefork-supervisor")
        try:
            while True:
                with self._lock:
                    if self._shutdown and (not self._children or self._abandon):
                        return
                    timeout = self._timeout()
                try:
                    self._serve(self._selector.select(timeout), handlers)
                except Exception as exc:  # noqa: BLE001 - a dead supervisor would hang every job
                    if not failures.note(exc):
                        return  # the worker shuts down: its jobs are reported LOST at stop
                    time.sleep(failures.pause())
        finally:
            self._close_fds()

    def _serve(
        self,
        events: list[tuple[selectors.SelectorKey, int]],
        handlers: dict[str, Callable[[_Child], None]],
    ) -> None:
        # Messages first: a child that reported and exited is reported before it is reaped.
        events.sort(key=lambda event: event[0].data is not None and event[0].data[0] != "conn")
        for key, _ in events:
            if key.data is None:
                self._drain_wake()
            elif self._selector.get_map().get(key.fd) is key:
                kind, c = key.data
                handlers[kind](c)
        if self._deadlines:
            self._expire()
        if self._reconcile or self._start_failures:
            self._adjust()

    def _timeout(self) -> float | None:
        now = time.monotonic()
        wakes = (
            [c.deadline for c in self._children if c.deadline is not None]
            if self._deadlines
            else []
        )
        if self._shutdown:
            wakes.append(now + 0.1)  # poll while children exit
        elif self._start_failures and len(self._live()) < self.concurrency:
            wakes.append(self._respawn_at)
        self._next_wake = min(wakes, default=float("inf"))
        return None if not wakes else max(0.0, self._next_wake - now)

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _on_message(self, c: _Child) -> None:
        try:
            message = c.conn.recv()
        except (EOFError, OSError):
            # The child exited; its sentinel follows. Stop watching the pipe meanwhile.
            self._selector.unregister(c.conn.fileno())
            return
        self._handle(c, message)

    def _handle(self, c: _Child, message: tuple[Any, ...]) -> None:
        reports: list[Report] = []
        wake = False
        with self._lock:
            if message[0] == "D":
                _, value, error, retire = message
                entry = self._free(c)
                if entry is not None:
                    reports.append((entry, finished(entry.job.id, value, error, c.pid)))
                if retire:  # the child exits on its own
                    c.retiring = True
                    self._reconcile = True
                else:
                    wake = self._take_back(c)
            elif message[0] == "R":
                for question in self._standing[c.standing:] if c.slot is not None else ():
                    # Asked while it started: it consumes already, so as soon as may be.
                    try:
                        c.conn.send(("Q", 0, question))
                    except OSError:
                        break
                c.ready = True
                self._start_failures = 0
                self._changed.notify_all()
                wake = self._take_back(c)
            elif message[0] == "A":
                answers = self._answers.get(message[1])
                if answers is not None:  # else it came after its asker gave up
                    answers.append(message[2])
                    self._changed.notify_all()
            elif message[0] in _CHILD_JOB:
                wake = self._on_child_job(c, message, reports)
            elif message[0] == "F":
                self._fatal = message[1]
                self._changed.notify_all()
                log.error("a prefork child cannot load the runner:\n%s", message[1])
        self._settle(reports)
        if wake:
            self._wake()

    def _on_child_job(self, c: _Child, message: tuple[Any, ...], reports: list[Report]) -> bool:
        """Under the lock: a consumer child began ("B", id, name, payload, hard limit) or
        ended ("E", id) a job, asks to be killed now ("K": it settled the job it was stopped
        in) or to be replaced ("X"); True if the supervisor must wake for a deadline."""
        kind = message[0]
        if kind == "B":
            assert self._orphans is not None
            _, job_id, name, payload, hard = message
            c.entry = self._ledger.add(Job(job_id, name, payload, None, hard),
                                       partial(self._orphan, payload))
            if hard is not None:
                c.deadline = time.monotonic() + hard + HARD_GRACE
                self._deadlines += 1
                return c.deadline < self._next_wake
        elif kind == "E" and c.entry is not None and c.entry.job.id == message[1]:
            self._ledger.drop(self._free(c))  # type: ignore[arg-type]
        elif kind == "K":
            entry = self._free(c)
            if entry is not None:  # it settled the job itself
                self._ledger.drop(entry)
            self._stop_job(c)
        elif kind == "X":
            self._retire(c)
        return False

    def _orphan(self, payload: bytes, outcome: Outcome) -> None:
        """A job a consumer child began and never ended: reported with the child's payload."""
        assert self._orphans is not None
        outcome.extra["payload"] = payload
        self._orphans(outcome)

    def _on_exit(self, c: _Child) -> None:
        with self._lock:
            c.retiring = True  # a last message below must not make it idle again
        if c.conn.fileno() in self._selector.get_map():
            # A last message may still be in the pipe.
            while True:
                try:
                    if not c.conn.poll():
                        break
                    self._handle(c, c.conn.recv())
                except (EOFError, OSError):
                    break
            self._selector.unregister(c.conn.fileno())
        self._selector.unregister(c.process.sentinel)
        c.process.join(0)
        code = c.process.exitcode
        reports: list[Report] = []
        with self._lock:
            self._children.remove(c)
            if c in self._idle:
                self._idle.remove(c)
            entry = self._free(c) or self._slot_entry(c)
            if entry is not None:
                why = f"the child process {c.pid} died (exit code {code}) while running the job"
                reports.append(lost(entry, why, c.pid))
            note = c.slot[0].read_note() if c.slot is not None and code != 0 else None
            self._close_slot(c)
            if not c.ready:
                if self._starting and self._fatal is None:
                    self._fatal = f"a child exited with code {code} before it was ready"
                self._start_failed()
            self._reconcile = True
        c.conn.close()
        if code is not None:
            c.process.close()
        self._settle(reports)
        if note is not None and self._gone is not None:
            try:
                self._gone(pickle.loads(note))
            except Exception:  # noqa: BLE001 - they come back when their leases run out
                log.exception("cannot give back what prefork child %s held", c.pid)

    def _slot_entry(self, c: _Child) -> Entry | None:
        """Under the lock, for a consumer child that is gone: an entry for the job its slot
        says it ran."""
        data = c.slot[0].read() if c.slot is not None else None
        if data is None:
            return None
        job = pickle.loads(data)
        return self._ledger.add(Job(job.id, job.name, data), partial(self._orphan, data))

    def _close_slot(self, c: _Child) -> None:
        if c.slot is not None:
            slot, path = c.slot
            self._done_gone += slot.done()
            c.slot = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # the child unlinks it once it maps it, unless it died first
            slot.close()

    def _expire(self) -> None:
        now = time.monotonic()
        reports: list[Report] = []
        with self._lock:
            for c in self._children:
                if c.deadline is None or c.deadline > now or c.entry is None:
                    continue
                if c.conn.poll():
                    continue  # it reported just in time: the message is handled next round
                limit = c.entry.job.hard_time_limit
                why = f"hard time limit ({limit} s) exceeded"
                reports.append((c.entry, Outcome(c.entry.job.id, OutcomeKind.TIMEOUT, why, c.pid)))
                self._stop_job(c)
        self._settle(reports)

    def _live(self) -> list[_Child]:
        return [c for c in self._children if not c.retiring]

    def _adjust(self) -> None:
        """Start or retire children until `concurrency` of them are not retiring."""
        with self._lock:
            self._reconcile = False
            if self._closing:
                return
            live = self._live()
            excess = len(live) - self.concurrency
            # Children without a job first (starting or idle); busy ones after their job.
            for c in sorted(live, key=lambda c: (c.entry is not None, c.ready))[: max(excess, 0)]:
                if c in self._idle:
                    self._idle.remove(c)
                self._retire(c)
            missing = -excess
            if missing > 0 and self._start_failures and time.monotonic() < self._respawn_at:
                return
        for _ in range(missing):
            try:
                c = self._spawn()
            except Exception:  # noqa: BLE001 - e.g. out of file descriptors; retried later
                log.exception("cannot start a prefork child; retrying")
                with self._lock:
                    self._start_failed()
                return
            self._add(c)

    def _start_failed(self) -> None:
        # Back off, so a child that cannot start does not make the parent spin.
        self._start_failures += 1
        self._respawn_at = time.monotonic() + min(0.1 * 2**self._start_failures, 10.0)

    def _spawn(self) -> _Child:
        assert self._ctx is not None and self._runner_data is not None
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        limits = (self.max_tasks_per_child, self.max_memory_per_child)
        slot, index = None, 0
        standing: list[Any] = []  # what a consumer child is told before it consumes
        target: Callable[..., None]
        args: tuple[Any, ...]
        if self._orphans is None:
            target, args = child_module.main, (child_end, self._runner_data, *limits)
        else:
            slot = consumers.Slot.create()
            with self._lock:
                standing = list(self._standing)
                taken = {c.index for c in self._children if c.process.exitcode is None}
            index = next(i for i in itertools.count(1) if i not in taken)
            target, args = consumers.consume, (child_end, self._runner_data, slot[1], *limits,
                                               standing, index)
        process = self._ctx.Process(  # type: ignore[attr-defined]
            target=target, args=args, name="kernel-prefork-child")
        try:
            process.start()
        except BaseException:
            parent_end.close()
            if slot is not None:
                slot[0].close()
                os.unlink(slot[1])
            raise
        finally:
            child_end.close()
        child = _Child(process, parent_end, slot)
        child.standing = len(standing)
        child.index = index
        return child

    def _add(self, c: _Child) -> None:
        self._selector.register(c.conn.fileno(), selectors.EVENT_READ, ("conn", c))
        self._selector.register(c.process.sentinel, selectors.EVENT_READ, ("sentinel", c))
        with self._lock:
            self._children.append(c)
            if self._closing:
                self._kill(c)

    # ------------------------------------------------------------------ shutdown

    def _reap_all(self) -> None:
        """After the supervisor ended: make sure every child is gone, killing stragglers."""
        deadline = time.monotonic() + EXIT_GRACE
        for c in self._children:
            c.process.join(max(0.0, deadline - time.monotonic()))
            if c.process.exitcode is None:
                c.process.kill()
                c.process.join(EXIT_GRACE)
            c.conn.close()
        self._children.clear()
        self._close_fds()

    def _close_fds(self) -> None:
        with self._lock:
            if self._wake_r < 0:
                return
            wake_r, wake_w, self._wake_r, self._wake_w = self._wake_r, self._wake_w, -1, -1
        self._selector.close()
        os.close(wake_r)
        os.close(wake_w)

    def _at_exit(self) -> None:
        # multiprocessing joins non-daemon children at exit: stop them first, or exit would wait.
        self.stop(wait=False)
