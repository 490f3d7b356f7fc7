"""Celery 5 and kernel exchange yaml tasks and results on Redis, both ways: a kernel
client's ``application/x-yaml`` task runs on a real Celery worker and its yaml result
reads back in kernel; a Celery client's runs on a kernel worker. Bytes, datetimes, dates, sets,
big ints and int keys travel as themselves."""

from __future__ import annotations

import os
import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kernel import App
from kernel.testing.interop import celery_client, celery_tasks_source, kernel_tasks
from kernel.testing.workers import CeleryWorkerProcess, running_worker

from conftest import REDIS_URL
from kernel_redis.testing import reachable

if not os.environ.get("CI"):  # under CI a missing Celery is a failure, not a skip
    pytest.importorskip("celery", reason="interop tests need celery")

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

#: both sides send and store results as yaml, and accept nothing else (so nothing passes
#: as json).
CONF: dict[str, Any] = {"task_serializer": "yaml", "result_serializer": "yaml",
                        "accept_content": ["yaml"]}
#: interop.add(x, y) returns x + y: lists concatenate, so the values travel there and back.
LEFT: list[Any] = [b"\xff\x00raw", "żółw", 2**100, -1.5, None, {1: [True, b""]}, {3, "x"}]
RIGHT: list[Any] = [dt.datetime(2026, 12, 7, 23, 45, 1, 250, tzinfo=dt.timezone.utc),
                    dt.datetime(2026, 12, 7, 1, 2), dt.date(2026, 12, 7), "yes", "0x1F"]


@pytest.fixture(scope="module")
def broker() -> str:
    return reachable(REDIS_URL, "Redis, the interop tests' broker,")


@pytest.fixture
def queue() -> str:
    return f"yaml-interop-{uuid.uuid4().hex}"


@pytest.fixture
def kernel_worker(broker: str, queue: str) -> Iterator[App]:
    kapp = kernel_tasks(broker, broker, queue, **CONF)
    with running_worker(kapp, concurrency=2):
        yield kapp
    kapp.close()


def test_a_kernel_clients_yaml_task_runs_on_a_celery_worker(
        broker: str, queue: str,
        celery_worker: Callable[[str, str, str], CeleryWorkerProcess]) -> None:
    worker = celery_worker("ctasks", celery_tasks_source(broker, broker, queue, **CONF), queue)
    kapp = App("kernel-client", broker=broker, results=broker,
               config={"task_default_queue": queue, **CONF})
    try:
        result = kapp.send_task("interop.add", (LEFT, RIGHT))
        assert result.get(timeout=40) == LEFT + RIGHT, f"see {worker.log}"
        meta = kapp.backend.get_meta(result.id)
        assert meta is not None and meta["status"] == "SUCCESS"
    finally:
        kapp.close()


def test_a_celery_clients_yaml_task_runs_on_a_kernel_worker(
        broker: str, queue: str, kernel_worker: App) -> None:
    capp = celery_client(broker, broker, queue, **CONF)
    try:
        sent = capp.send_task("interop.add", (LEFT, RIGHT))
        assert sent.get(timeout=40) == LEFT + RIGHT, "Celery reads kernel's yaml result"
        message = kernel_worker.AsyncResult(sent.id)
        assert message.get(timeout=5) == LEFT + RIGHT
    finally:
        capp.close()
