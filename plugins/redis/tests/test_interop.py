"""Celery 5 and kernel on one Redis: a Celery client calls a kernel worker, and a kernel client
calls a Celery worker, each reading the result through its own AsyncResult."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from kernel.app import App
from kernel.worker.worker import Worker

if os.environ.get("CI"):
    import celery  # CI installs the test extra: a missing Celery is a failure there
else:
    celery = pytest.importorskip("celery", reason="interop tests need celery>=5.3 (test extra)")


@pytest.fixture
def queue() -> str:
    return f"interop-{uuid.uuid4().hex}"


def test_celery_client_calls_kernel_worker(redis_url: str, queue: str) -> None:
    kapp = App("kernel-side", broker=redis_url, results=redis_url,
               config={"task_default_queue": queue})

    @kapp.task(name="interop.add")
    def add(x: int, y: int) -> int:
        return x + y

    worker = Worker(kapp, pool="threads", concurrency=2)
    worker.start()
    capp = celery.Celery("celery-side", broker=redis_url, backend=redis_url)
    capp.conf.task_default_queue = queue

    @capp.task(name="interop.add")  # type: ignore[untyped-decorator]
    def celery_add(x: int, y: int) -> int:
        raise AssertionError("runs on the kernel worker, never here")

    try:
        result = celery_add.delay(2, 3)
        assert result.get(timeout=15) == 5, "a Celery client must read the kernel worker's result"
        assert result.status == "SUCCESS"
    finally:
        worker.stop()
        kapp.close()
        capp.close()


CELERY_TASKS = textwrap.dedent("""
    from celery import Celery
    app = Celery("ctasks", broker={url!r}, backend={url!r})
    app.conf.task_default_queue = {queue!r}
    app.conf.worker_hijack_root_logger = False

    @app.task(name="interop.mul")
    def mul(x, y):
        return x * y
""")


@pytest.mark.timeout(90)
def test_kernel_client_calls_celery_worker(redis_url: str, queue: str, tmp_path: Path) -> None:
    (tmp_path / "ctasks.py").write_text(CELERY_TASKS.format(url=redis_url, queue=queue))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "ctasks", "worker", "-P", "solo", "-Q", queue,
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning",
         "-n", f"{queue}@%h"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    kapp = App("kernel-client", broker=redis_url, results=redis_url)
    try:
        result = kapp.send_task("interop.mul", (6, 7), queue=queue)
        assert result.get(timeout=40) == 42, "a kernel client must read the Celery worker's result"
    finally:
        kapp.close()
        worker.terminate()
        try:
            _, err = worker.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            _, err = worker.communicate()
        if worker.returncode not in (0, -15):
            print(err.decode(errors="replace")[-3000:])
