"""Shared fixtures: an Azurite of the tests' own (started once, on a free port), a container per
test, the Redis broker the interop tests run Celery and kernel on, and real Celery workers.

``KERNEL_AZURE_BLOB_TEST_URL`` puts the tests on that account instead of Azurite. Without
Azurite or a reachable Redis the tests that need them skip, except under CI (``CI`` set), where
that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kernel.testing.workers import CeleryWorkerProcess, celery_workers
from kernel_azure_blob.testing import Azurite, url_from_environment
from kernel_redis.testing import reachable

REDIS_URL = os.environ.get("KERNEL_REDIS_TEST_URL", "redis://127.0.0.1:6379/13")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite | None]:
    if url_from_environment():
        yield None
        return
    with Azurite(tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture
def azure_url(azurite: Azurite | None) -> str:
    return url_from_environment() or azurite.url()  # type: ignore[union-attr]


@pytest.fixture
def azure_options() -> dict[str, Any]:
    """Settings naming a container of the test's own (created by the store on first use)."""
    return {"azureblockblob_container_name": f"results-{uuid.uuid4().hex[:16]}"}


@pytest.fixture(scope="session")
def redis_url() -> str:
    return reachable(REDIS_URL, "Redis, the interop tests' broker,")


@pytest.fixture
def celery_worker(tmp_path: Path) -> Iterator[Callable[[str, str, str], CeleryWorkerProcess]]:
    """Start a real Celery worker (solo pool) on a queue from module source: call it with
    ``(module name, source, queue)``; its log is ``<module>.log`` in the test's tmp_path."""
    with celery_workers(tmp_path) as start:
        yield start
