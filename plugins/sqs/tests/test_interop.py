"""Celery 5 (kombu's SQS transport: boto3 to send, pycurl to consume) and kernel on one queue of
moto's SQS, results in Redis: a Celery client's tasks run on a kernel worker and a kernel
client's on a real Celery worker, each reading the result through its own AsyncResult, on a
queue whose name SQS does not take as it is (both sides map it as kombu does)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kernel import App
from kernel.testing.interop import celery_client, celery_tasks_source, kernel_tasks
from kernel.testing.workers import CeleryWorkerProcess, running_worker

#: both sides poll briefly (the defaults, 10 s long polls, only slow a test's shutdown).
CELERY_OPTIONS = {"region": "us-east-1", "wait_time_seconds": 1, "polling_interval": 0.1}
KERNEL_OPTIONS = {"region": "us-east-1", "wait_time_seconds": 1}


@pytest.fixture
def queue() -> str:
    return f"interop.{uuid.uuid4().hex[:16]}"  # a dot: the SQS queue is interop-<hex>


@pytest.fixture
def kernel_worker(sqs_url: str, redis_url: str, queue: str) -> Iterator[App]:
    kapp = kernel_tasks(sqs_url, redis_url, queue, transport_options=KERNEL_OPTIONS)
    with running_worker(kapp, concurrency=4):
        yield kapp
    kapp.close()


@pytest.fixture
def celery_app(sqs_url: str, redis_url: str, queue: str) -> Iterator[Any]:
    capp = celery_client(sqs_url, redis_url, queue, broker_transport_options=CELERY_OPTIONS)
    yield capp
    capp.close()


@pytest.mark.timeout(120)
def test_a_celery_clients_tasks_run_on_a_kernel_worker(celery_app: Any,
                                                       kernel_worker: App) -> None:
    result = celery_app.send_task("interop.add", (2, 3))
    assert result.get(timeout=30) == 5, "a Celery client reads the kernel worker's result"
    failed = celery_app.send_task("interop.boom", ("lost",))
    with pytest.raises(KeyError):
        failed.get(timeout=30)
    sent = time.time()
    later = celery_app.send_task("interop.add", (4, 5), countdown=2)
    assert later.get(timeout=30) == 9
    assert time.time() - sent >= 2, "Celery's countdown (its eta header) is kept"
    many = [celery_app.send_task("interop.add", (i, i)) for i in range(20)]
    assert [r.get(timeout=60) for r in many] == [2 * i for i in range(20)]


@pytest.mark.timeout(150)
def test_a_kernel_clients_tasks_run_on_a_celery_worker(
        sqs_url: str, redis_url: str, queue: str,
        celery_worker: Callable[[str, str, str], CeleryWorkerProcess]) -> None:
    worker = celery_worker("ctasks", celery_tasks_source(
        sqs_url, redis_url, queue, broker_transport_options=CELERY_OPTIONS), queue)
    kapp = App("kernel-client", broker=sqs_url, results=redis_url,
               config={"task_default_queue": queue, "transport_options": KERNEL_OPTIONS})
    try:
        result = kapp.send_task("interop.add", (6, 7))
        assert result.get(timeout=60) == 13, f"see {worker.log}"
        sent = time.time()
        later = kapp.send_task("interop.add", (1, 1), countdown=3)
        assert later.get(timeout=60) == 2, f"see {worker.log}"
        assert time.time() - sent >= 3, "kernel's DelaySeconds kept it at the broker"
        batch = kapp.send_many([("interop.add", (i, 1), {}) for i in range(20)])
        assert [r.get(timeout=60) for r in batch] == [i + 1 for i in range(20)], \
            f"a batched publish (SendMessageBatch) reads as Celery's own; see {worker.log}"
    finally:
        kapp.close()
