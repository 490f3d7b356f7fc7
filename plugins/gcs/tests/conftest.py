"""Shared fixtures: a gcp-storage-emulator of the tests' own (started once, on a free port, and
named by STORAGE_EMULATOR_HOST for this process and the workers it starts), a bucket per test,
the Redis broker the interop tests run Celery and kernel on, and real Celery workers.

With STORAGE_EMULATOR_HOST already set, the tests use that server instead (and with
``KERNEL_GCS_TEST_REAL=1``, Cloud Storage itself with the environment's credentials). Without
the emulator or a reachable Redis the tests that need them skip, except under CI (``CI`` set).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kernel.testing.workers import CeleryWorkerProcess, celery_workers
from kernel_gcs.testing import PROJECT, GCSEmulator
from kernel_redis.testing import reachable

REDIS_URL = os.environ.get("KERNEL_REDIS_TEST_URL", "redis://127.0.0.1:6379/13")
#: true against Cloud Storage itself (preconditions honoured), false on the emulator.
REAL = bool(os.environ.get("KERNEL_GCS_TEST_REAL"))


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GCSEmulator | None]:
    if REAL or os.environ.get("STORAGE_EMULATOR_HOST"):
        yield None
        return
    with GCSEmulator(tmp_path_factory.mktemp("gcs")) as server:
        os.environ["STORAGE_EMULATOR_HOST"] = server.host
        try:
            yield server
        finally:
            del os.environ["STORAGE_EMULATOR_HOST"]


@pytest.fixture
def new_bucket(emulator: GCSEmulator | None) -> Callable[[], str]:
    """Create a bucket of the test's own: call it."""

    def create() -> str:
        from google.cloud import storage

        name = f"results-{uuid.uuid4().hex[:16]}"
        storage.Client(project=PROJECT).create_bucket(name)
        return name

    return create


@pytest.fixture
def gcs_url(new_bucket: Callable[[], str]) -> str:
    return f"gs://{new_bucket()}?gcs_project={PROJECT}"


@pytest.fixture
def gcs_options() -> dict[str, Any]:
    """What the emulator needs: it ignores generation preconditions."""
    return {"gcs_conditional_writes": REAL}


@pytest.fixture(scope="session")
def redis_url() -> str:
    return reachable(REDIS_URL, "Redis, the interop tests' broker,")


@pytest.fixture
def celery_worker(tmp_path: Path) -> Iterator[Callable[[str, str, str], CeleryWorkerProcess]]:
    """Start a real Celery worker (solo pool) on a queue from module source: call it with
    ``(module name, source, queue)``; its log is ``<module>.log`` in the test's tmp_path."""
    with celery_workers(tmp_path) as start:
        yield start
