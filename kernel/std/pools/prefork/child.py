"""The prefork child: load the runner once, then run one job at a time for the parent.

Pipe protocol (the parent sends a job only to an idle child, so neither side needs job ids):

- child → parent: ``("R",)`` ready; ``("F", traceback)`` the runner cannot be loaded (the child
  exits); ``("D", value, error, retire)`` one job done, ``retire`` = the child exits now.
- parent → child: a pickled job tuple (`encode_job`), or ``None``: exit.

Consumer children (`PreforkPool.start_consumers`) run `consumers.consume` instead.

The child exits on its own after `max_tasks` jobs or when its resident memory passes
`max_memory_kib` (after reporting the job), and when the parent's end of the pipe closes. On Linux
it is also killed when its parent, the fork server, exits, which the fork server does when the
worker dies: a worker killed with -9 leaves no child running a task that is about to be
redelivered elsewhere.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import signal
import sys
import traceback
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

from kernel.errors import SoftTimeLimitExceeded
from kernel.interfaces.pool import Job
from kernel.pooling import SOFT_LIMIT_LATE, call_runner

_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024 if hasattr(os, "sysconf") else 4


def encode_job(job: Job) -> bytes:
    """The bytes the parent sends for `job` (a tuple: smaller and faster than the dataclass)."""
    fields = (job.id, job.name, job.payload, job.soft_time_limit, job.hard_time_limit, job.is_async)
    return pickle.dumps(fields, pickle.HIGHEST_PROTOCOL)


def rss_kib() -> int:
    """This process's resident memory in KiB."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_KIB
    except OSError:  # not Linux
        import psutil  # type: ignore[import-untyped]

        return int(psutil.Process().memory_info().rss) // 1024


class SoftLimit:
    """SIGALRM raises `SoftTimeLimitExceeded` in the running job, and only while a job runs."""

    armed = False

    @classmethod
    def on_alarm(cls, signum: int, frame: FrameType | None) -> None:
        if cls.armed:
            cls.armed = False
            raise SoftTimeLimitExceeded()

    @classmethod
    def run(cls, runner: Any, job: Job) -> tuple[Any, str | None]:
        if job.soft_time_limit is None:
            return call_runner(runner, job)
        try:
            cls.armed = True
            signal.setitimer(signal.ITIMER_REAL, max(job.soft_time_limit, 1e-6))
            try:
                return call_runner(runner, job)
            finally:
                cls.armed = False
                signal.setitimer(signal.ITIMER_REAL, 0)
        except SoftTimeLimitExceeded:
            return None, SOFT_LIMIT_LATE


def die_with_the_worker() -> None:
    if sys.platform != "linux":
        return
    from multiprocessing import forkserver

    # multiprocessing hands each child a descriptor that keeps the fork server alive as long as
    # any child lives; without it, the fork server exits as soon as the worker does...
    server = getattr(forkserver, "_forkserver", None)
    alive_fd = getattr(server, "_forkserver_alive_fd", None)
    if alive_fd is None:
        return  # not started by a fork server
    server._forkserver_alive_fd = None  # type: ignore[union-attr]
    os.close(alive_fd)
    # ...and this child, with its parent.
    parent = os.getppid()
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the fork server exited before the call
        os._exit(1)


def main(
    conn: Connection, runner_data: bytes, max_tasks: int | None, max_memory_kib: int | None
) -> None:
    # Ctrl-C and a service manager's SIGTERM reach the whole process group: the parent decides
    # (a warm shutdown lets running jobs finish); it stops a child through the pipe or SIGKILL.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_the_worker()
    try:
        runner = pickle.loads(runner_data)
    except BaseException:  # noqa: BLE001 - reported to the parent, which explains it
        conn.send(("F", traceback.format_exc()))
        raise SystemExit(1) from None
    signal.signal(signal.SIGALRM, SoftLimit.on_alarm)
    conn.send(("R",))
    done = 0
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if message is None:
            return
        job = Job(*message)
        value, error = SoftLimit.run(runner, job)
        done += 1
        retire = retiring(done, max_tasks, max_memory_kib)
        try:
            conn.send(("D", value, error, retire))
        except OSError:
            return
        except Exception as exc:  # noqa: BLE001 - pickling fails before anything is written
            why = f"the runner returned a value that cannot be pickled: {exc!r}"
            conn.send(("D", None, why, retire))
        if retire:
            return


def retiring(done: int, max_tasks: int | None, max_memory_kib: int | None) -> bool:
    return (max_tasks is not None and done >= max_tasks) or (
        max_memory_kib is not None and rss_kib() > max_memory_kib)
