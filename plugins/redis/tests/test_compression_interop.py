"""Compressed tasks between Celery 5 and kernel on Redis, for every compressor both ship: a
Celery worker runs a task a kernel client sent compressed with each (kombu's header and names),
a kernel worker runs one a Celery client sent compressed with each, and under kernel's
``task_compression_min_bytes`` a Celery worker runs the uncompressed body it is sent."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from kernel import App
from kernel.testing.interop import celery_client, celery_tasks_source, kernel_tasks
from kernel.testing.workers import CeleryWorkerProcess, celery_workers, running_worker

import celery_or_skip  # noqa: F401 - skips (or fails under CI) without Celery

#: kernel's name → the name a Celery user gives (kombu's aliases).
COMPRESSIONS = {"zlib": "gzip", "bzip2": "bzip2", "lzma": "xz", "zstd": "zstd",
                "brotli": "brotli"}
#: large enough to be worth compressing, so each compressor really runs.
TEXT = "kernel and celery " * 200


@pytest.fixture(scope="module")
def queue() -> str:
    return f"compression-interop-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def celery_on_queue(redis_url: str, queue: str, tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[CeleryWorkerProcess]:
    with celery_workers(tmp_path_factory.mktemp("celery")) as start:
        yield start("ctasks", celery_tasks_source(redis_url, redis_url, queue), queue)


@pytest.mark.parametrize("name", COMPRESSIONS)
def test_a_celery_worker_runs_a_task_kernel_sent_compressed(
        redis_url: str, queue: str, celery_on_queue: CeleryWorkerProcess, name: str) -> None:
    kapp = App("kernel-client", broker=redis_url, results=redis_url,
               config={"task_default_queue": queue})
    try:
        result = kapp.send_task("interop.add", (TEXT, name), compression=name)
        assert result.get(timeout=40) == TEXT + name, f"see {celery_on_queue.log}"
    finally:
        kapp.close()


def test_under_the_threshold_celery_runs_the_uncompressed_body(
        redis_url: str, queue: str, celery_on_queue: CeleryWorkerProcess) -> None:
    kapp = App("kernel-client", broker=redis_url, results=redis_url,
               config={"task_default_queue": queue, "task_compression": "zstd",
                       "task_compression_min_bytes": 4096})
    try:
        assert kapp.send_task("interop.add", (2, 3)).get(timeout=40) == 5
        assert kapp.send_task("interop.add", (TEXT, "!")).get(timeout=40) == TEXT + "!"
    finally:
        kapp.close()


@pytest.fixture(scope="module")
def kernel_worker(redis_url: str) -> Iterator[tuple[App, str]]:
    queue = f"compression-interop-kernel-{uuid.uuid4().hex}"
    kapp = kernel_tasks(redis_url, redis_url, queue)
    with running_worker(kapp, concurrency=2):
        yield kapp, queue
    kapp.close()


@pytest.mark.parametrize("name", COMPRESSIONS)
def test_a_kernel_worker_runs_a_task_celery_sent_compressed(
        redis_url: str, kernel_worker: tuple[App, str], name: str) -> None:
    _, queue = kernel_worker
    capp = celery_client(redis_url, redis_url, queue)
    try:
        sent = capp.send_task("interop.add", (TEXT, name), compression=COMPRESSIONS[name])
        assert sent.get(timeout=40) == TEXT + name
    finally:
        capp.close()
