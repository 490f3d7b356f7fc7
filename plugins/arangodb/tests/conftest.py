"""Shared fixtures: the ArangoDB server the tests run against, a collection of each test's
own, and for the interop tests the Redis broker (127.0.0.1:6379/12) and real Celery workers.

No ArangoDB runs where these tests run: they answer the parts of ArangoDB's HTTP API that
python-arango calls for the store from `kernel_arangodb.testing.ArangoFake` (a thread of the
test process, on a free loopback port). With
``KERNEL_TEST_ARANGODB_URL=arangodb://root:password@host:8529/database`` they run against that
real server instead (the database must exist; each test makes a collection of its own there);
the tests that need the fake's own knobs skip there.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kernel.testing.workers import CeleryWorkerProcess, celery_workers
from kernel_arangodb.testing import ArangoFake
from kernel_redis.testing import reachable

REAL = os.environ.get("KERNEL_TEST_ARANGODB_URL", "").rstrip("/")
REDIS_URL = os.environ.get("KERNEL_REDIS_TEST_URL", "redis://127.0.0.1:6379/12")


@pytest.fixture(scope="session")
def fake() -> Iterator[ArangoFake | None]:
    if REAL:
        yield None
        return
    # A password: Celery's backend sends no credentials at all for an empty one.
    with ArangoFake(databases=("celery",), credentials=("root", "kernel-test"),
                    ttl_frequency=0.2) as server:
        yield server


@pytest.fixture
def arangodb_url(fake: ArangoFake | None) -> str:
    """A collection of the test's own (made by a store with ``arangodb_create_collection``)."""
    collection = f"results_{uuid.uuid4().hex[:12]}"
    return f"{REAL}/{collection}" if REAL else fake.url("celery", collection)  # type: ignore[union-attr]


@pytest.fixture
def only_fake(fake: ArangoFake | None) -> ArangoFake:
    """The fake, for a test that needs its knobs (stopping it, reading its documents)."""
    if fake is None:
        pytest.skip("needs the fake ArangoDB (KERNEL_TEST_ARANGODB_URL names a real server)")
    return fake


@pytest.fixture(scope="session")
def redis_url() -> str:
    return reachable(REDIS_URL, "Redis, the interop tests' broker,")


@pytest.fixture
def celery_worker(tmp_path: Path) -> Iterator[Callable[[str, str, str], CeleryWorkerProcess]]:
    """Start a real Celery worker (solo pool) on a queue from module source: call it with
    ``(module name, source, queue)``; its log is ``<module>.log`` in the test's tmp_path."""
    with celery_workers(tmp_path) as start:
        yield start
