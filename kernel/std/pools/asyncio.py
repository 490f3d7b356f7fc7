"""The asyncio pool: one event loop in a dedicated thread runs up to `concurrency` jobs at once.

A job with ``is_async`` is awaited as ``runner.arun(job)`` when the runner has ``arun``; any
other job runs as ``runner(job)`` in a thread, as `asyncio.to_thread` would, but in the pool's
own executor of `concurrency` threads (a sync job never waits for a thread; resizing is exact).
Hard time limits and `terminate_job` cancel async jobs (TIMEOUT / TERMINATED); a sync job in a
thread cannot be stopped, so neither applies to it. There are no soft time limits. Threads of
sync jobs abandoned at `stop` keep the interpreter from exiting until they return.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import threading
import traceback
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kernel.interfaces.pool import Job, OnDone, Outcome, OutcomeKind, Runner
from kernel.pooling import Entry, StdPool, finished
from kernel.std.pools import ASYNCIO_CAPABILITIES

_SHUTDOWN_GRACE = 2.0


class AsyncioPool(StdPool):
    capabilities = ASYNCIO_CAPABILITIES
    _kind = "asyncio"

    def __init__(self, concurrency: int, **limits: int | None) -> None:
        super().__init__(concurrency, **limits)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified when nothing runs any more
        self._inbox: deque[Entry] = deque()
        self._running: dict[Entry, asyncio.Task[Outcome]] = {}
        self._wake_scheduled = False
        self._runner: Runner | None = None
        self._arun: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ Pool API

    def start(self, runner: Runner) -> None:
        with self._lock:
            self._refuse_restart(self._runner is not None)
            self._runner = runner
            self._arun = getattr(runner, "arun", None)
            self._loop = asyncio.new_event_loop()
            self._executor = self._new_executor()
            self._thread = threading.Thread(
                target=self._loop.run_forever, name="kernel-asyncio", daemon=True
            )
            self._thread.start()

    def submit(self, job: Job, on_done: OnDone) -> None:
        with self._lock:
            self._refuse_unless_open(self._loop is not None)
            assert self._loop is not None
            self._inbox.append(self._ledger.add(job, on_done))
            # One wake-up per burst of submits, not one per job.
            wake, self._wake_scheduled = not self._wake_scheduled, True
        if wake:
            self._loop.call_soon_threadsafe(self._dispatch)

    def stop(self, wait: bool = True, timeout: float | None = None) -> None:
        with self._lock:
            reports = self._close(self._inbox)
            if reports is None:
                return
            loop = self._loop
            if wait and loop is not None:
                self._idle.wait_for(lambda: not self._running, timeout)
        self._ledger.settle_all(reports)
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(_SHUTDOWN_GRACE * 2)
        except Exception:  # noqa: BLE001 - the loop is wedged by a job; give it up
            loop.call_soon_threadsafe(loop.stop)
        assert self._thread is not None
        self._thread.join(_SHUTDOWN_GRACE)
        if not self._thread.is_alive():
            loop.close()

    def terminate_job(self, job_id: str) -> bool:
        with self._lock:
            found = [
                (entry, task)
                for entry, task in self._running.items()
                if entry.job.id == job_id and self._is_async(entry.job)
            ]
        for entry, task in found:
            self._cancel(entry, task, OutcomeKind.TERMINATED, "terminated on request")
        return bool(found)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "running": len(self._running)}

    # ------------------------------------------------------------------ event loop side

    def _new_executor(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(self.concurrency, thread_name_prefix="kernel-asyncio-sync")

    def _is_async(self, job: Job) -> bool:
        return job.is_async and self._arun is not None

    def _resize(self, delta: int) -> None:
        with self._lock:
            self.concurrency += delta
            loop, old = self._loop, self._executor
            if old is not None:
                self._executor = self._new_executor()
        if loop is not None and old is not None:
            old.shutdown(wait=False)  # its running jobs finish; new ones go to the new executor
            loop.call_soon_threadsafe(self._dispatch)

    def _dispatch(self) -> None:
        loop = self._loop
        assert loop is not None
        with self._lock:
            self._wake_scheduled = False
            while self._inbox and len(self._running) < self.concurrency and not self._closing:
                entry = self._inbox.popleft()
                task = loop.create_task(self._run(entry.job))
                self._running[entry] = task
                task.add_done_callback(functools.partial(self._done, entry))
                limit = entry.job.hard_time_limit
                if limit is not None and self._is_async(entry.job):
                    loop.call_later(
                        limit, self._cancel, entry, task, OutcomeKind.TIMEOUT, "hard time limit"
                    )

    async def _run(self, job: Job) -> Outcome:
        try:
            if self._is_async(job):
                value = await self._arun(job)
            else:
                runner = self._runner
                assert runner is not None
                call = functools.partial(contextvars.copy_context().run, runner, job)
                value = await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except asyncio.CancelledError:
            raise
        except BaseException:  # noqa: BLE001 - a raising runner is reported, not propagated
            return finished(job.id, None, traceback.format_exc())
        return finished(job.id, value, None)

    def _cancel(
        self, entry: Entry, task: asyncio.Task[Outcome], kind: OutcomeKind, why: str
    ) -> None:
        # Reported at once; the slot frees when the task has really unwound.
        if not task.done() and self._ledger.settle(
            entry, Outcome(entry.job.id, kind, why, os.getpid())
        ):
            task.get_loop().call_soon_threadsafe(task.cancel)

    def _done(self, entry: Entry, task: asyncio.Task[Outcome]) -> None:
        with self._lock:
            del self._running[entry]
            if not self._running:
                self._idle.notify_all()
        if task.cancelled():
            self._ledger.settle(entry, Outcome(entry.job.id, OutcomeKind.LOST, "cancelled"))
        else:
            self._ledger.settle(entry, task.result())
        self._dispatch()

    async def _shutdown(self) -> None:
        with self._lock:
            running = dict(self._running)
        for entry, task in running.items():
            self._cancel(entry, task, OutcomeKind.LOST, "the pool stopped while the job ran")
        if running:
            await asyncio.wait(running.values(), timeout=_SHUTDOWN_GRACE)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        loop = asyncio.get_running_loop()
        loop.call_soon(loop.stop)
