"""Shared fixtures: the Redis server the tests run against, and real Celery workers.

Tests use database 13 by default (``KERNEL_REDIS_TEST_URL`` overrides it) and unique key and
queue names, so they run in parallel and never touch another application's keys. Without a
reachable Redis the tests are skipped, except under CI (``CI`` set) where that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from kernel.testing.workers import CeleryWorkerProcess, celery_workers
from kernel_redis.testing import reachable

URL = os.environ.get("KERNEL_REDIS_TEST_URL", "redis://127.0.0.1:6379/13")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return reachable(URL)


@pytest.fixture
def raw_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def celery_worker(tmp_path: Path) -> Iterator[Callable[[str, str, str], CeleryWorkerProcess]]:
    """Start a real Celery worker (solo pool) on a queue from module source: call it with
    ``(module name, source, queue)``; its log is ``<module>.log`` in the test's tmp_path."""
    with celery_workers(tmp_path) as start:
        yield start
