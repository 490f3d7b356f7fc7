"""Tasks run by real ``kernel worker`` processes in test_worker.py, configured through the
environment: ``KERNEL_BROKER_URL`` (SQS) / ``KERNEL_RESULT_BACKEND`` (Redis, where the tasks
also book their runs), ``E2E_QUEUE``, ``E2E_LEASE`` (worker_lease_seconds),
``E2E_MAX_DELIVERIES``, ``E2E_OPTIONS`` (the transport options, JSON) and ``E2E_KEYS``, the
prefix of the bookkeeping keys, so the test can tell how often and where each task ran."""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import redis

from kernel import App

app = App("sqs-e2e", config={
    "task_default_queue": os.environ.get("E2E_QUEUE", "e2e"),
    "worker_lease_seconds": float(os.environ.get("E2E_LEASE", "30")),
    "task_max_deliveries": int(os.environ.get("E2E_MAX_DELIVERIES", "10")),
    "transport_options": json.loads(os.environ.get("E2E_OPTIONS", "{}"))})
KEYS = os.environ.get("E2E_KEYS", "e2e")
_books: dict[tuple[int, int], redis.Redis] = {}


def book() -> redis.Redis:
    """This process's and thread's bookkeeping client (one shared by the threads pool's
    threads once read from a closed socket)."""
    key = (os.getpid(), threading.get_ident())
    if key not in _books:
        _books[key] = redis.Redis.from_url(os.environ["KERNEL_RESULT_BACKEND"])
    return _books[key]


@app.task(name="e2e.work", bind=True)
def work(self: Any, seconds: float) -> str:
    """Counts its runs (``<keys>:runs``) and the process it started in, then works."""
    pipe = book().pipeline(transaction=True)
    pipe.sadd(f"{KEYS}:started:{os.getpid()}", self.request.id)
    pipe.hincrby(f"{KEYS}:runs", self.request.id, 1)
    pipe.execute()
    time.sleep(seconds)
    return str(self.request.id)


@app.task(name="e2e.timed", bind=True)
def timed(self: Any) -> None:
    """Counts its runs and how late it started against its ETA (``<keys>:late``)."""
    pipe = book().pipeline(transaction=True)
    pipe.hincrby(f"{KEYS}:runs", self.request.id, 1)
    pipe.hset(f"{KEYS}:late", self.request.id, repr(time.time() - self.request.eta))
    pipe.execute()


@app.task(name="e2e.crash", bind=True)
def crash(self: Any) -> None:
    """Counts its run, then kills the process running it (a poison message)."""
    book().hincrby(f"{KEYS}:runs", self.request.id, 1)
    os._exit(1)
