"""The runner the pool conformance suite starts pools with.

Module-level and picklable, so process pools can send it to their children. A job's payload is a
command tuple; marker files (paths chosen by the test) let a test see what a job is doing from
any process without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kernel.errors import SoftTimeLimitExceeded
from kernel.interfaces.pool import Job

#: memory leaked on purpose by ("alloc", MiB), so the child's resident size stays up.
_LEAKED: list[bytes] = []
_POLL = 0.005


def _touch(path: str, text: str = "") -> None:
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    Path(tmp).write_text(text)
    os.replace(tmp, path)  # appears whole: a reader never sees it half written


@contextlib.contextmanager
def _marked(marker: str) -> Iterator[None]:
    """Writes `marker` (the pid) as the job starts and ``marker + ".done"`` as it returns."""
    _touch(marker, str(os.getpid()))
    try:
        yield
    finally:
        _touch(marker + ".done")


def _barrier_arrive(directory: str) -> None:
    _touch(os.path.join(directory, f"{os.getpid()}-{threading.get_ident()}-{uuid.uuid4().hex}"))


def _barrier_met(directory: str, n: int) -> bool:
    return sum(not name.endswith(".tmp") for name in os.listdir(directory)) >= n


def _rss_kib() -> int:
    import psutil  # type: ignore[import-untyped]

    return int(psutil.Process().memory_info().rss) // 1024


def _wait_until(condition: Callable[[], bool], max_s: float) -> bool:
    end = time.monotonic() + max_s
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(_POLL)
    return True


async def _await_until(condition: Callable[[], bool], max_s: float) -> bool:
    end = time.monotonic() + max_s
    while not condition():
        if time.monotonic() > end:
            return False
        await asyncio.sleep(_POLL)
    return True


class SuiteRunner:
    """``runner(job)`` for every pool, plus ``arun`` for pools that await async jobs.

    Commands (``job.payload``):

    - ``("echo", x)`` → x; ``("pid",)`` → the pid that ran it; ``("where",)`` → "sync"/"async"
    - ``("raise",)`` → raises RuntimeError (a runner that breaks its contract)
    - ``("sleep", s)`` → "slept" after s seconds; ``("mark-sleep", marker, s)`` marks first
    - ``("mark-wait", marker, release, max_s)`` → writes `marker` (its pid), waits for the file
      `release`; "released" or "not-released"; writes ``marker + ".done"`` as it returns
    - ``("barrier", directory, n, max_s)`` → "met" when n jobs arrived at once, else "missed"
    - ``("soft", max_s)`` → "soft" if `SoftTimeLimitExceeded` arrives, else "no-soft-limit";
      ``("soft-spin", max_s)`` the same in a busy loop (a job that never yields)
    - ``("spin", max_s)`` → busy-loops (only a kill or a cancel stops it early) → "spun";
      ``("mark-spin", marker, max_s)`` marks first
    - ``("alloc", mib)`` → leaks `mib` MiB, returns the pid; ``("rss",)`` → resident KiB
    - ``("exit", code)`` → the process exits at once (a crash)
    """

    def __call__(self, job: Job) -> Any:
        command, *args = job.payload
        if command == "echo":
            return args[0]
        if command == "pid":
            return os.getpid()
        if command == "where":
            return "sync"
        if command == "raise":
            raise RuntimeError("runner failure requested by the test")
        if command in ("sleep", "mark-sleep"):
            if command == "mark-sleep":
                _touch(args.pop(0), str(os.getpid()))
            time.sleep(args[0])
            return "slept"
        if command == "mark-wait":
            marker, release, max_s = args
            with _marked(marker):
                released = _wait_until(lambda: os.path.exists(release), max_s)
            return "released" if released else "not-released"
        if command == "barrier":
            directory, n, max_s = args
            _barrier_arrive(directory)
            return "met" if _wait_until(lambda: _barrier_met(directory, n), max_s) else "missed"
        if command == "soft":
            end = time.monotonic() + args[0]
            try:
                while time.monotonic() < end:
                    time.sleep(_POLL)  # short sleeps: a thread's async exception lands between
            except SoftTimeLimitExceeded:
                return "soft"
            return "no-soft-limit"
        if command == "soft-spin":
            end = time.monotonic() + args[0]
            try:
                while time.monotonic() < end:
                    pass
            except SoftTimeLimitExceeded:
                return "soft"
            return "no-soft-limit"
        if command in ("spin", "mark-spin"):
            if command == "mark-spin":
                _touch(args.pop(0), str(os.getpid()))
            end = time.monotonic() + args[0]
            while time.monotonic() < end:
                pass
            return "spun"
        if command == "alloc":
            _LEAKED.append(b"\x01" * (args[0] << 20))
            return os.getpid()
        if command == "rss":
            return _rss_kib()
        if command == "exit":
            os._exit(args[0])
        raise ValueError(f"unknown suite command {command!r}")

    async def arun(self, job: Job) -> Any:
        command, *args = job.payload
        if command == "where":
            return "async"
        if command == "spin":
            await _await_until(lambda: False, args[0])
            return "spun"
        if command == "mark-wait":
            marker, release, max_s = args
            with _marked(marker):
                released = await _await_until(lambda: os.path.exists(release), max_s)
            return "released" if released else "not-released"
        if command == "barrier":
            directory, n, max_s = args
            _barrier_arrive(directory)
            met = await _await_until(lambda: _barrier_met(directory, n), max_s)
            return "met" if met else "missed"
        return self(job)
