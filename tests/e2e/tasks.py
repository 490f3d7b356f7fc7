"""Tasks the end-to-end tests run in a real `kernel worker` subprocess.

The broker and result store come from KERNEL_BROKER_URL / KERNEL_RESULT_BACKEND, set per test.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from kernel import App, SoftTimeLimitExceeded
from kernel.testing.files import append_line

app = App("e2e", config={"worker_lease_seconds": float(os.environ.get("E2E_LEASE", "30")),
                         "task_max_deliveries": int(os.environ.get("E2E_MAX_DELIVERIES", "10")),
                         "worker_pool_restarts": os.environ.get("E2E_POOL_RESTARTS") == "1"})

_hoard: list[bytes] = []


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task
def total(values: list[int]) -> int:
    return sum(values)


@app.task
async def async_add(x: int, y: int) -> int:
    await asyncio.sleep(0.001)
    return x + y


@app.task
def pid() -> int:
    return os.getpid()


@app.task
def grow(mib: int) -> int:
    """Keeps `mib` MiB alive in this process, so its RSS grows past a memory limit."""
    _hoard.append(b"x" * (mib * 1024 * 1024))
    return os.getpid()


@app.task(time_limit=1)
def spin() -> None:
    while True:
        pass


@app.task(soft_time_limit=0.5)
def soft() -> str:
    try:
        while True:
            time.sleep(0.01)
    except SoftTimeLimitExceeded:
        return "soft limit raised inside the task"


@app.task
def block_first_time(marker: str) -> str:
    """First run: records its pid in `marker` and blocks until killed; a redelivery finishes."""
    path = Path(marker)
    if not path.exists():
        path.write_text(str(os.getpid()))
        while True:
            time.sleep(0.05)
    return "done after redelivery"


@app.task
def slow_add(x: int, y: int) -> int:
    time.sleep(0.02)
    return x + y


@app.task
def fail(message: str) -> None:
    raise ValueError(message)


@app.task
def sleep_until(marker: str) -> str:
    """Records that it started in `marker`, then runs until the file `marker + ".go"` exists."""
    Path(marker).write_text(str(os.getpid()))
    while not Path(marker + ".go").exists():
        time.sleep(0.02)
    return "finished"


@app.task(reject_on_worker_lost=False)
def block_first_time_no_redelivery(marker: str) -> str:
    return block_first_time(marker)


@app.task
def crash_the_process() -> None:
    """A poison message: it kills whichever process runs it."""
    os._exit(1)


@app.task
def touch(path: str) -> str:
    Path(path).touch()
    return path


@app.task
def spin_without_limit() -> None:
    """Ignores its soft limit, so only the hard one can stop it."""
    while True:
        try:
            while True:
                pass
        except SoftTimeLimitExceeded:
            continue


@app.task
def soft_without_limit() -> str:
    try:
        while True:
            time.sleep(0.01)
    except SoftTimeLimitExceeded:
        return "the worker's soft limit raised inside the task"


@app.task(rate_limit="20/s", ignore_result=True)
def stamp(path: str) -> None:
    """Notes when it ran: the per-worker rate limit is the worker's, however many processes."""
    append_line(path, f"{time.time()} {os.getpid()}")
