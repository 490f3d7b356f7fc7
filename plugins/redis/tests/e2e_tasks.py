"""Tasks run by real ``kernel worker`` processes in test_worker_e2e.py, configured through the
environment: ``KERNEL_BROKER_URL`` / ``KERNEL_RESULT_BACKEND`` (read by App), ``E2E_QUEUE``,
``E2E_LEASE`` (worker_lease_seconds) and ``E2E_KEYS``, the prefix of the bookkeeping keys the
tasks write so the test can tell how often and where each one ran."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from kernel import App

app = App("e2e", config={"task_default_queue": os.environ.get("E2E_QUEUE", "e2e"),
                         "worker_lease_seconds": float(os.environ.get("E2E_LEASE", "30")),
                         "task_max_deliveries": int(os.environ.get("E2E_MAX_DELIVERIES", "10"))})
KEYS = os.environ.get("E2E_KEYS", "e2e")
_clients: dict[tuple[int, int], redis.Redis] = {}


def book() -> redis.Redis:
    """This process's bookkeeping client; it rides out a Redis restart (retries ~10 s) and a
    loaded machine (redis-py's default 5 s read timeout is too short there)."""
    # One client per process and thread: a task once failed with "I/O operation on closed
    # file" from a client shared by the threads pool's threads.
    pid = (os.getpid(), threading.get_ident())
    if pid not in _clients:
        _clients[pid] = redis.Redis.from_url(
            os.environ["KERNEL_BROKER_URL"], retry=Retry(ExponentialBackoff(cap=0.5), 30),
            socket_timeout=60, socket_connect_timeout=10,
            retry_on_error=[redis.ConnectionError, redis.TimeoutError])
    return _clients[pid]


@app.task(name="e2e.work", bind=True)
def work(self: Any, seconds: float) -> str:
    """Counts its runs (``<keys>:runs``) and the worker process it started in
    (``<keys>:started:<pid>``), then works for `seconds`."""
    pipe = book().pipeline(transaction=True)
    pipe.sadd(f"{KEYS}:started:{os.getpid()}", self.request.id)
    pipe.hincrby(f"{KEYS}:runs", self.request.id, 1)
    pipe.execute()
    time.sleep(seconds)
    return str(self.request.id)


@app.task(name="e2e.timed", bind=True)
def timed(self: Any) -> None:
    """Counts its runs and records how late it started against its ETA (``<keys>:late``)."""
    late = time.time() - self.request.eta
    pipe = book().pipeline(transaction=True)
    pipe.hincrby(f"{KEYS}:runs", self.request.id, 1)
    pipe.hset(f"{KEYS}:late", self.request.id, repr(late))
    pipe.execute()


@app.task(name="e2e.crash", bind=True)
def crash(self: Any) -> None:
    """A poison message: counts its run, then kills the process running it."""
    book().hincrby(f"{KEYS}:runs", self.request.id, 1)
    os._exit(1)


@app.task(name="e2e.crash_no_redelivery", bind=True, reject_on_worker_lost=False)
def crash_no_redelivery(self: Any) -> None:
    """Kills its process; must fail with WorkerLostError, not run again."""
    book().hincrby(f"{KEYS}:runs", self.request.id, 1)
    os._exit(1)
