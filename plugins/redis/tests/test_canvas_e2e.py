"""A chord of 1,000 header tasks on Redis, run by two real ``kernel worker`` processes: the body
is called once, with every header result in order, and every task runs once."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis

from kernel import Signature, chord
from kernel.app import App

TESTS = Path(__file__).parent


@pytest.mark.timeout(240)
def test_a_chord_of_a_thousand_on_two_workers(redis_url: str, tmp_path: Path) -> None:
    queue = f"canvas-e2e-{uuid.uuid4().hex}"
    keys = f"{queue}:book"
    env = {**os.environ, "KERNEL_BROKER_URL": redis_url, "KERNEL_RESULT_BACKEND": redis_url,
           "E2E_QUEUE": queue, "E2E_KEYS": keys,
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    workers = []
    for n in range(2):
        log = (tmp_path / f"worker-{n}.log").open("wb")
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "kernel", "worker", "-A", "canvas_tasks:app", "-P", "threads",
             "-c", "4", "-Q", queue, "-l", "warning", "-n", f"w{n}@{queue}"],
            env=env, stdout=log, stderr=subprocess.STDOUT))
    client = App("canvas-e2e-client", broker=redis_url, results=redis_url,
                 config={"task_default_queue": queue})
    raw = redis.Redis.from_url(redis_url)
    try:
        header = [Signature("canvas.add", (i, i), app=client) for i in range(1000)]
        result = chord(header, Signature("canvas.tsum", app=client)).apply_async()
        assert result.get(timeout=180) == sum(2 * i for i in range(1000))
        runs = {k.decode(): int(v) for k, v in raw.hgetall(f"{keys}:runs").items()}
        assert len(runs) == 1001 and set(runs.values()) == {1}, "every task ran exactly once"
        assert runs[result.id] == 1, "the body ran once"
        assert raw.scard(f"{keys}:pids") == 2, (
            f"both workers took part; logs in {tmp_path}")
        assert not raw.exists(f"celery-taskset-meta-{result.parent.id}.j"), (  # type: ignore[union-attr]
            "the chord's counter keys are gone once the body was sent")
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        raw.delete(f"{keys}:runs", f"{keys}:pids")
        raw.close()
        client.close()
