"""The threads pool: N worker threads in the worker's process, resizable at run time.

Soft time limits raise `SoftTimeLimitExceeded` inside the job's thread through
`PyThreadState_SetAsyncExc` (signals can only reach the main thread). CPython delivers such an
exception between bytecodes, so it interrupts Python code but not a blocking C call: a job blocked
in ``time.sleep(60)`` or a socket read sees it only when the call returns. There is no hard limit
and no way to stop a running job: a thread cannot be killed.
"""

from __future__ import annotations

import ctypes
import heapq
import itertools
import os
import threading
import time
from collections import deque
from typing import Any

from kernel.errors import SoftTimeLimitExceeded
from kernel.interfaces.pool import Job, OnDone, Outcome, Runner
from kernel.pooling import SOFT_LIMIT_LATE, Entry, StdPool, call_runner, finished, lost
from kernel.std.pools import THREADS_CAPABILITIES


def _set_async_exc(thread_id: int, exc: type[BaseException] | None) -> None:
    # None clears an exception that is pending but not yet raised (NULL at the C level).
    arg = ctypes.py_object(exc) if exc is not None else None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), arg)


class SoftLimitTimer:
    """One thread that raises `SoftTimeLimitExceeded` in job threads whose soft deadline passed.

    `arm` and `disarm` are called by the job's own thread; firing and disarming are serialised by
    one lock, so the exception is only ever set while the job is armed. If it fired but had not
    been raised yet when the job returned, `disarm` clears it."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int]] = []
        self._armed: dict[int, int] = {}  # token -> thread id
        self._fired: set[int] = set()
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    def arm(self, seconds: float) -> int:
        token = next(self._tokens)
        deadline = time.monotonic() + seconds
        with self._cond:
            self._armed[token] = threading.get_ident()
            heapq.heappush(self._heap, (deadline, token))
            if len(self._heap) > 64 and len(self._heap) > 2 * len(self._armed):
                # Drop the deadlines of jobs that finished in time, so the heap stays small.
                self._heap = [item for item in self._heap if item[1] in self._armed]
                heapq.heapify(self._heap)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="kernel-soft-limits", daemon=True
                )
                self._thread.start()
            elif self._heap[0][1] == token:
                self._cond.notify()
        return token

    def disarm(self, token: int) -> None:
        with self._cond:
            if self._armed.pop(token, None) is None and token in self._fired:
                self._fired.discard(token)
                _set_async_exc(threading.get_ident(), None)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                while self._heap and self._heap[0][1] not in self._armed:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, token = self._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
                self._fired.add(token)
                _set_async_exc(self._armed.pop(token), SoftTimeLimitExceeded)


class ThreadPool(StdPool):
    """Jobs run in `concurrency` threads; `grow`/`shrink` add or retire threads."""

    capabilities = THREADS_CAPABILITIES
    _kind = "threads"

    def __init__(self, concurrency: int, **limits: int | None) -> None:
        super().__init__(concurrency, **limits)
        self._cond = threading.Condition(threading.Lock())
        self._pending: deque[Entry] = deque()
        self._running: dict[int, Entry] = {}  # thread id -> its job
        self._threads: set[threading.Thread] = set()
        self._retire = 0
        self._names = itertools.count(1)
        self._runner: Runner | None = None
        self._timer = SoftLimitTimer()

    # ------------------------------------------------------------------ Pool API

    def start(self, runner: Runner) -> None:
        with self._cond:
            self._refuse_restart(self._runner is not None)
            self._runner = runner
            self._spawn(self.concurrency)

    def submit(self, job: Job, on_done: OnDone) -> None:
        with self._cond:
            self._refuse_unless_open(self._runner is not None)
            self._pending.append(self._ledger.add(job, on_done))
            self._cond.notify()

    def stop(self, wait: bool = True, timeout: float | None = None) -> None:
        with self._cond:
            reports = self._close(self._pending)
            if reports is None:
                return
            threads = list(self._threads)
            self._cond.notify_all()
        self._ledger.settle_all(reports)
        if wait:
            deadline = None if timeout is None else time.monotonic() + timeout
            for thread in threads:
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        with self._cond:
            # Threads cannot be killed: those still running are abandoned, their late results
            # ignored by the ledger.
            reports = [
                lost(e, "the pool stopped while the job ran", os.getpid())
                for e in self._running.values()
            ]
        self._ledger.settle_all(reports)
        self._timer.close()

    def info(self) -> dict[str, Any]:
        return {**super().info(), "threads": len(self._threads)}

    # ------------------------------------------------------------------ threads

    def _resize(self, delta: int) -> None:
        with self._cond:
            self.concurrency += delta
            if delta < 0:
                self._retire -= delta
                self._cond.notify_all()
            else:  # threads about to retire stay instead of new ones starting
                revived = min(self._retire, delta)
                self._retire -= revived
                self._spawn(delta - revived)

    def _spawn(self, n: int) -> None:
        # Called with the lock held, after start.
        if self._runner is None or self._closing:
            return
        for _ in range(n):
            thread = threading.Thread(
                target=self._work, name=f"kernel-{self._kind}-{next(self._names)}", daemon=True
            )
            self._threads.add(thread)
            thread.start()

    def _work(self) -> None:
        me = threading.current_thread()
        tid = threading.get_ident()
        runner = self._runner
        while True:
            with self._cond:
                while not self._pending and not self._closing and not self._retire:
                    self._cond.wait()
                if self._retire or not self._pending:
                    if self._retire:
                        self._retire -= 1
                    self._threads.discard(me)
                    return
                entry = self._pending.popleft()
                self._running[tid] = entry
            outcome = self._execute(runner, entry.job)
            with self._cond:
                del self._running[tid]
            self._ledger.settle(entry, outcome)

    def _execute(self, runner: Any, job: Job) -> Outcome:
        if job.soft_time_limit is None:
            return finished(job.id, *call_runner(runner, job))
        token = self._timer.arm(job.soft_time_limit)
        try:
            try:
                value, error = call_runner(runner, job)
            finally:
                self._timer.disarm(token)
        except SoftTimeLimitExceeded:
            # Raised in the few bytecodes between the runner's return and the disarm.
            self._timer.disarm(token)
            value, error = None, SOFT_LIMIT_LATE
        return finished(job.id, value, error)
