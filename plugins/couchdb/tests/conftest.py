"""Shared fixtures: a pouchdb-server of the tests' own (started once, on a free port), the Redis
broker the interop tests run Celery and kernel on, and real Celery workers.

Without pouchdb-server or a reachable Redis the tests that need them skip, except under CI
(``CI`` set), where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kernel.testing.workers import CeleryWorkerProcess, celery_workers
from kernel_redis.testing import reachable
from kernel_couchdb.testing import PouchServer

REDIS_URL = os.environ.get("KERNEL_REDIS_TEST_URL", "redis://127.0.0.1:6379/13")


@pytest.fixture(scope="session")
def pouch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PouchServer]:
    with PouchServer(tmp_path_factory.mktemp("pouch")) as server:
        yield server


@pytest.fixture
def couchdb_url(pouch: PouchServer) -> str:
    """A database of the test's own (created by the store on first use)."""
    return pouch.url(f"results-{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return reachable(REDIS_URL, "Redis, the interop tests' broker,")


@pytest.fixture
def celery_worker(tmp_path: Path) -> Iterator[Callable[[str, str, str], CeleryWorkerProcess]]:
    """Start a real Celery worker (solo pool) on a queue from module source: call it with
    ``(module name, source, queue)``; its log is ``<module>.log`` in the test's tmp_path."""
    with celery_workers(tmp_path) as start:
        yield start
