"""Shared fixtures: an nx-27017 of the tests' own (started once per test process, on a free
port, with a data directory of its own), a database per test, Apps on it, the Redis broker the
interop tests run Celery and kernel on, and real Celery workers.

Without nx-27017 or a reachable Redis the tests that need them skip, except under CI (``CI``
set), where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kernel.testing.results import app_stores
from kernel.testing.workers import CeleryWorkerProcess, celery_workers
from kernel_mongodb.results import MongoResultStore
from kernel_mongodb.testing import NxServer
from kernel_redis.testing import reachable

#: the broker of the interop tests (Celery needs one it has a transport for).
REDIS_URL = os.environ.get("KERNEL_REDIS_TEST_URL", "redis://127.0.0.1:6379/14")


@pytest.fixture(scope="session")
def nx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NxServer]:
    with NxServer(tmp_path_factory.mktemp("nx")) as server:
        yield server


@pytest.fixture
def mongo_url(nx: NxServer) -> str:
    """A database of the test's own (MongoDB creates it on the first write)."""
    return nx.url(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def make_store() -> Iterator[Callable[..., MongoResultStore]]:
    """``make_store(url, **config)``: the store an App with that config would use."""
    with app_stores(MongoResultStore, "mongodb-tests") as make:
        yield make


@pytest.fixture(scope="session")
def redis_url() -> str:
    return reachable(REDIS_URL, "Redis, the interop tests' broker,")


@pytest.fixture
def celery_worker(tmp_path: Path) -> Iterator[Callable[[str, str, str], CeleryWorkerProcess]]:
    """Start a real Celery worker (solo pool) on a queue from module source: call it with
    ``(module name, source, queue)``; its log is ``<module>.log`` in the test's tmp_path."""
    with celery_workers(tmp_path) as start:
        yield start
