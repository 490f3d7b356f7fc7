"""The prefork pool's consumer children (`PreforkPool.start_consumers`).

A consumer child runs a `ChildMain` (in the worker: a worker of its own, of concurrency 1): it
consumes on connections of its own, runs its jobs one at a time on its main thread
(`ChildPool`) and tells the parent only what it runs, in its `Slot` of shared memory (the job
it runs; after each fetch, what it holds; how many jobs it ended) and in messages for the rest:
``("B", id, name, payload, hard limit)`` a job began that the parent must time (or too big for
the slot), ``("E", id)`` it ended, ``("K",)`` kill this child now (it settled the job it was
stopped in: a hard limit, a termination), ``("X",)`` replace this child, ``("A", ticket,
answer)`` its answer to a question. The parent sends ``None`` (stop warm: finish the job, give
the prefetched messages back), ``"cold"`` (give the job back too, now) or ``("Q", ticket,
question)`` (`Pool.ask_consumers`).
"""

from __future__ import annotations

import logging
import mmap
import os
import pickle
import signal
import struct
import sys
import tempfile
import threading
import time
import traceback
import zlib
from collections import deque
from collections.abc import Callable, Collection, Sequence
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

from kernel.interfaces.pool import (ChildLink, ChildMain, Job, OnDone, Outcome, OutcomeKind,
                                    Pool, PoolCapabilities, Runner)
from kernel.interfaces.transport import Delivery
from kernel.pooling import Entry, StdPool, finished, lost
from kernel.std.pools.prefork.child import SoftLimit, die_with_the_worker, retiring
from kernel.supervision import FATAL

log = logging.getLogger(__name__)

#: seconds between two looks of an idle consumer child at its worker's health.
FATAL_CHECK = 1.0

#: what a consumer child's own pool can do: the parent enforces the hard limit and terminates.
CHILD_CAPABILITIES = PoolCapabilities(soft_time_limit=True, hard_time_limit=True,
                                      terminate=True, isolated=True)


class Slot:
    """The job a consumer child runs, in memory its parent maps too: how the parent learns
    what a child that died was running without a message per job. The child writes the job,
    then marks it running (one byte, last); the parent reads it only once the child is gone."""

    SIZE = 256 * 1024  # a sparse file: only the pages written take memory
    NOTE = 64 * 1024  # where the note begins: the job before, the note after
    ALIVE = NOTE - 8  # when the child last said it was alive (a double, time.time())
    DONE = NOTE - 16  # how many jobs the child ended (an unsigned 64-bit count)
    _HEADER = struct.Struct("<BxxxI")  # running, length of the pickled job
    _NOTE = struct.Struct("<II")  # length and CRC-32 of the note (a torn one is ignored)

    def __init__(self, path: str) -> None:
        with open(path, "r+b") as file:
            self._map = mmap.mmap(file.fileno(), self.SIZE)

    @classmethod
    def create(cls) -> tuple[Slot, str]:
        """A new slot and the path of its file, for the child to map (it unlinks it)."""
        where = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        fd, path = tempfile.mkstemp(prefix="kernel-prefork-", dir=where)
        try:
            os.ftruncate(fd, cls.SIZE)
        finally:
            os.close(fd)
        return cls(path), path

    def write(self, data: bytes) -> bool:
        """Mark the job `data` running; False if it does not fit (the caller says it)."""
        end = self._HEADER.size + len(data)
        if end > self.ALIVE:
            return False
        self._map[self._HEADER.size:end] = data
        self._HEADER.pack_into(self._map, 0, 1, len(data))
        return True

    def clear(self) -> None:
        self._map[0] = 0

    def running(self) -> bool:
        return bool(self._map[0])

    def read(self) -> bytes | None:
        """The pickled job marked running, or None."""
        running, length = self._HEADER.unpack_from(self._map, 0)
        if not running:
            return None
        return self._map[self._HEADER.size:self._HEADER.size + length]

    def beat(self) -> None:
        struct.pack_into("<d", self._map, self.ALIVE, time.time())

    def last_beat(self) -> float:
        return float(struct.unpack_from("<d", self._map, self.ALIVE)[0])

    def count(self, done: int) -> None:
        struct.pack_into("<Q", self._map, self.DONE, done)

    def done(self) -> int:
        return int(struct.unpack_from("<Q", self._map, self.DONE)[0])

    def write_note(self, data: bytes) -> None:
        """Keep `data` for the parent (what this child holds); too big: the last one stays."""
        start = self.NOTE + self._NOTE.size
        if start + len(data) <= self.SIZE:
            self._map[start:start + len(data)] = data
            self._NOTE.pack_into(self._map, self.NOTE, len(data), zlib.crc32(data))

    def read_note(self) -> bytes | None:
        length, crc = self._NOTE.unpack_from(self._map, self.NOTE)
        start = self.NOTE + self._NOTE.size
        data = self._map[start:start + length]
        return data if length and zlib.crc32(data) == crc else None

    def close(self) -> None:
        self._map.close()


class _Link(ChildLink):
    """The consumer child's end of the pipe (several threads write to it) and its slot."""

    def __init__(self, conn: Connection, slot: Slot, max_tasks: int | None,
                 max_memory_kib: int | None, standing: list[Any], index: int) -> None:
        self._conn = conn
        self._standing = standing
        self._index = index
        self.slot = slot
        self._lock = threading.Lock()
        self._limits = (max_tasks, max_memory_kib)
        self.child_pool: ChildPool | None = None
        self.stopping: Callable[[], None] | None = None

    def send(self, message: tuple[Any, ...]) -> None:
        with self._lock:
            self._conn.send(message)

    def began(self, job: Job) -> None:
        self.send(("B", job.id, job.name, job.payload, job.hard_time_limit))

    def ended(self, job_id: str) -> None:
        self.send(("E", job_id))

    def stop_me(self) -> None:
        """This process settled its job and gave back what it held: kill it now."""
        self.send(("K",))

    def retire(self) -> None:
        self.send(("X",))

    def on_stop(self, callback: Callable[[], None]) -> None:
        self.stopping = callback

    def alive(self) -> None:
        self.slot.beat()

    def holding(self, deliveries: Sequence[Delivery]) -> None:
        held = [(d.tag, d.queue, d.delivery_count) for d in deliveries]
        self.slot.write_note(pickle.dumps(held, pickle.HIGHEST_PROTOCOL))

    def standing(self) -> list[Any]:
        return self._standing

    def index(self) -> int:
        return self._index

    def pool(self) -> Pool:
        self.child_pool = ChildPool(self, self.slot, *self._limits)
        return self.child_pool


class ChildPool(StdPool):
    """A consumer child's pool: its jobs run one at a time on the main thread (`serve`), where
    SIGALRM raises the soft limit even inside a blocking call, as in a job child. A job goes
    in the slot; one with a hard limit (the parent must time it), or too big for the slot,
    is told the parent in a message instead (`ChildLink.began`)."""

    capabilities = CHILD_CAPABILITIES
    _kind = "prefork"

    def __init__(self, link: _Link, slot: Slot, max_tasks: int | None,
                 max_memory_kib: int | None) -> None:
        super().__init__(1)
        self._link = link
        self._slot = slot
        self._limits = (max_tasks, max_memory_kib)
        self._cond = threading.Condition(threading.Lock())
        self._pending: deque[Entry] = deque()
        self._running: Entry | None = None
        self._runner: Runner | None = None
        self._done = 0
        self._retired = False

    def start(self, runner: Runner) -> None:
        self._refuse_restart(self._runner is not None)
        self._runner = runner

    def submit(self, job: Job, on_done: OnDone) -> None:
        with self._cond:
            self._refuse_unless_open(self._runner is not None)
            entry = self._ledger.add(job, on_done)
            entry.on_done = partial(self._report, on_done, entry)
            entry.data = False  # told the parent in a message (True) or in the slot
            self._pending.append(entry)
            self._cond.notify()

    def _report(self, on_done: OnDone, entry: Entry, outcome: Outcome) -> None:
        # Settled here (acked, requeued or recorded): the parent no longer answers for it.
        on_done(outcome)
        if entry.data:
            self._link.ended(outcome.job_id)
        else:
            self._slot.clear()

    def stop(self, wait: bool = True, timeout: float | None = None) -> None:
        with self._cond:
            reports = self._close(self._pending)
            if reports is None:
                return
            self._cond.notify_all()
            if wait:
                self._cond.wait_for(lambda: self._running is None, timeout)
            running = self._running
        if running is not None:  # it goes on in the main thread; its late result is ignored
            reports.append(lost(running, "the pool stopped while the job ran"))
        self._ledger.settle_all(reports)

    def withdraw(self, job_ids: Collection[str] | None = None) -> list[Job]:
        return self._withdraw_from(self._cond, self._pending, job_ids)

    def terminate_job(self, job_id: str) -> bool:
        entry = self._running_entry(job_id)
        if entry is not None:
            self._end_here(entry, OutcomeKind.TERMINATED, "terminated on request")
        return entry is not None

    def _expired(self, job_id: str) -> None:
        entry = self._running_entry(job_id)
        if entry is not None:
            limit = entry.job.hard_time_limit
            self._end_here(entry, OutcomeKind.TIMEOUT, f"hard time limit ({limit} s) exceeded")

    def _running_entry(self, job_id: str) -> Entry | None:
        with self._cond:
            running = self._running
        return running if running is not None and running.job.id == job_id else None

    def _end_here(self, entry: Entry, kind: OutcomeKind, why: str) -> None:
        """The running job is stopped (its hard limit, a termination): reported here, so this
        process's consumer records it and acks its message; what waits here is given back;
        then the parent kills this process, whose main thread is still inside the job. If
        this process cannot do it (a job holding the interpreter lock), the parent kills it
        at the hard limit and HARD_GRACE and reports the job itself."""
        self._ledger.settle(entry, Outcome(entry.job.id, kind, why, os.getpid()))
        stopping = self._link.stopping
        if stopping is not None:
            try:
                stopping()
            except Exception:  # noqa: BLE001 - the parent stops this process all the same
                log.exception("cannot give back the messages this process holds")
        self._link.stop_me()

    def _resize(self, delta: int) -> None:
        raise NotImplementedError("a prefork child runs one job at a time; resize the pool")

    def serve(self) -> None:
        """Run jobs on this (the main) thread until the pool stops."""
        while True:
            with self._cond:
                # Once it asked to be replaced, it runs nothing more: the stop that follows
                # gives back what waits.
                while not self._cond.wait_for(
                        lambda: (bool(self._pending) and not self._retired) or self._closing,
                        FATAL_CHECK):
                    if FATAL.is_set() and not self._retired:
                        # A thread of this process's worker gave up: replace the process.
                        log.critical("%s; this process asks to be replaced", FATAL.reason)
                        self._retire()
                if self._closing or not self._pending:
                    return
                entry = self._running = self._pending.popleft()
            job = entry.job
            data = pickle.dumps(job, pickle.HIGHEST_PROTOCOL)
            timer = None
            if job.hard_time_limit is not None or not self._slot.write(data):
                entry.data = True
                self._link.began(Job(job.id, job.name, data, None, job.hard_time_limit))
            if job.hard_time_limit is not None:
                timer = threading.Timer(job.hard_time_limit, self._expired, (job.id,))
                timer.daemon = True
                timer.start()
            value, error = SoftLimit.run(self._runner, job)
            if timer is not None:
                timer.cancel()
            self._ledger.settle(entry, finished(job.id, value, error))
            with self._cond:  # after the report: a warm stop waits for it
                self._running = None
                self._cond.notify_all()
            self._done += 1
            self._slot.count(self._done)
            if not self._retired and retiring(self._done, *self._limits):
                self._retire()

    def _retire(self) -> None:
        self._retired = True  # asked once; the parent stops this child
        self._link.retire()


def _listen(conn: Connection, link: _Link, child: ChildMain) -> None:
    """The consumer child's pipe: stop warm or cold when the parent says so, cold when it is
    gone; a cold request during a warm stop makes it cold."""
    stopping: threading.Thread | None = None
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            message = "cold"
        if isinstance(message, tuple):  # ("Q", ticket, question)
            _answer(link, child, message)
            continue
        warm = message is None
        if stopping is None:
            stopping = threading.Thread(target=_stop, args=(child, warm), daemon=True,
                                        name="kernel-prefork-stop")
            stopping.start()
        elif not warm:
            child.stop(warm=False)
        if not warm:
            stopping.join()


def _answer(link: _Link, child: ChildMain, message: tuple[Any, ...]) -> None:
    _, ticket, question = message
    try:
        answer = child.answer(question)
    except Exception as exc:  # noqa: BLE001 - the parent gets the reason, the pipe goes on
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    try:
        link.send(("A", ticket, answer))  # through its lock: other threads write the pipe too
    except (OSError, pickle.PicklingError, TypeError) as exc:
        log.warning("cannot send an answer to the parent: %s", exc)


def _stop(child: ChildMain, warm: bool) -> None:
    """Stop the child, then end the process (its main thread may be inside an abandoned job)."""
    try:
        child.stop(warm=warm)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def consume(conn: Connection, child_data: bytes, slot_path: str, max_tasks: int | None,
            max_memory_kib: int | None, standing: list[Any], index: int = 1) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_the_worker()
    slot = Slot(slot_path)
    os.unlink(slot_path)  # mapped by both: nothing to clean up whoever exits first
    link = _Link(conn, slot, max_tasks, max_memory_kib, standing, index)
    try:
        child: ChildMain = pickle.loads(child_data)
        child.start(link)
        if link.child_pool is None:
            raise RuntimeError(f"{child!r} started without the pool ChildLink.pool gives")
    except BaseException:  # noqa: BLE001 - reported to the parent, which explains it
        link.send(("F", traceback.format_exc()))
        raise SystemExit(1) from None
    signal.signal(signal.SIGALRM, SoftLimit.on_alarm)
    threading.Thread(target=_listen, args=(conn, link, child), name="kernel-prefork-pipe",
                     daemon=True).start()
    link.send(("R",))
    link.child_pool.serve()
    threading.Event().wait()  # the pipe's thread ends the process once the child stopped
