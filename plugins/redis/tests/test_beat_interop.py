"""Beat's messages are ordinary Celery messages: a real Celery 5 worker runs the ticks a kernel
beat sends on Redis, and sees Celery's ``celery_beat_task`` header on them."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from kernel import App
from kernel.testing.beat import running_beat
from kernel.testing.transport import wait_for
from kernel.testing.workers import CeleryWorkerProcess

from celery_or_skip import celery  # noqa: F401 - skips without Celery

CELERY_TASKS = textwrap.dedent("""
    from celery import Celery

    app = Celery("beat-interop", broker={url!r})

    @app.task(name="beat_interop.tick", bind=True)
    def tick(self, n):
        with open({path!r}, "a") as f:
            f.write(f"{{n}} {{self.request.get('celery_beat_task')}}\\n")
""")


@pytest.mark.timeout(60)
def test_a_celery_worker_runs_the_ticks_of_a_kernel_beat(
        redis_url: str, tmp_path: Path, raw_redis: redis.Redis,
        celery_worker: Callable[[str, str, str], CeleryWorkerProcess]) -> None:
    queue, ran = f"beat-interop-{uuid.uuid4().hex}", tmp_path / "ran.txt"
    prefix = f"beat-interop-{uuid.uuid4().hex}"
    celery_worker("beat_celery_tasks", CELERY_TASKS.format(url=redis_url, path=str(ran)), queue)
    app = App("beat-interop", broker=redis_url, results=None, config={
        "beat_schedule_store_options": {"schedule_key": prefix},
        "beat_max_loop_interval": 0.5,
        "beat_schedule": {"tick": {"task": "beat_interop.tick", "schedule": 0.5, "args": [7],
                                   "options": {"queue": queue}}}})
    try:
        with running_beat(app):
            wait_for(lambda: ran.exists() and len(ran.read_text().splitlines()) >= 2, 40,
                     "the Celery worker to run two ticks")
    finally:
        app.close()
        for key in raw_redis.scan_iter(f"{prefix}:*"):
            raw_redis.delete(key)
    assert set(ran.read_text().splitlines()) == {"7 True"}
