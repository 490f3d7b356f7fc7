"""Shared fixtures: a memcached of the tests' own (started once, on a free port), the Redis
broker the interop tests run Celery and kernel on, and real Celery workers.

Without the memcached binary or a reachable Redis the tests that need them skip, except under
CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kernel.testing.workers import CeleryWorkerProcess, celery_workers
from kernel_redis.testing import reachable
from kernel_memcached.testing import MemcachedServer

REDIS_URL = os.environ.get("KERNEL_REDIS_TEST_URL", "redis://127.0.0.1:6379/13")


@pytest.fixture(scope="session")
def memcached(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MemcachedServer]:
    # The suite stores a value of 1 MiB, just over what a default server keeps in an item.
    with MemcachedServer(tmp_path_factory.mktemp("memcached"), item_size="2m") as server:
        yield server


@pytest.fixture(scope="session")
def memcached_url(memcached: MemcachedServer) -> str:
    return memcached.url


@pytest.fixture(scope="session")
def redis_url() -> str:
    return reachable(REDIS_URL, "Redis, the interop tests' broker,")


@pytest.fixture
def celery_worker(tmp_path: Path) -> Iterator[Callable[[str, str, str], CeleryWorkerProcess]]:
    """Start a real Celery worker (solo pool) on a queue from module source: call it with
    ``(module name, source, queue)``; its log is ``<module>.log`` in the test's tmp_path."""
    with celery_workers(tmp_path) as start:
        yield start


@pytest.fixture(scope="session")
def second_memcached_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with MemcachedServer(tmp_path_factory.mktemp("memcached-2"), item_size="2m") as server:
        yield server.url
