"""Tasks the canvas end-to-end test runs in real ``kernel worker`` processes. Each run is booked
in Redis under ``E2E_KEYS`` (runs per task id, the worker processes that ran them), so the test
can tell that every task ran exactly once and that both workers took part."""

from __future__ import annotations

import os
from typing import Any

import redis

from kernel import App

app = App("canvas-e2e", config={"task_default_queue": os.environ.get("E2E_QUEUE", "e2e")})
KEYS = os.environ.get("E2E_KEYS", "e2e")
_client: list[redis.Redis] = []


def book(task_id: str) -> None:
    if not _client:
        _client.append(redis.Redis.from_url(os.environ["KERNEL_BROKER_URL"]))
    pipe = _client[0].pipeline(transaction=True)
    pipe.hincrby(f"{KEYS}:runs", task_id, 1)
    pipe.sadd(f"{KEYS}:pids", os.getpid())
    pipe.execute()


@app.task(name="canvas.add", bind=True)
def add(self: Any, x: int, y: int) -> int:
    book(self.request.id)
    return x + y


@app.task(name="canvas.tsum", bind=True)
def tsum(self: Any, values: list[int]) -> int:
    book(self.request.id)
    return sum(values)
