"""Shared fixtures: moto's server and dynalite of the tests' own (each started once per test
process, on a free port), a table per test, the Redis broker the interop tests run Celery and
kernel on, and real Celery workers.

With ``KERNEL_DYNAMODB_TEST_URL`` set the `dynamodb_url` tests run against that DynamoDB
instead of moto. Without an emulator or a reachable Redis the tests that need them skip,
except under CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from kernel.testing.results import app_stores
from kernel.testing.workers import CeleryWorkerProcess, celery_workers
from kernel_dynamodb.store import DynamoDBStore
from kernel_dynamodb.testing import Dynalite, MotoServer, test_url
from kernel_redis.testing import reachable

#: the broker of the interop tests (Celery needs one it has a transport for).
REDIS_URL = os.environ.get("KERNEL_REDIS_TEST_URL", "redis://127.0.0.1:6379/12")


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with MotoServer(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="session")
def dynalite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dynalite]:
    with Dynalite(tmp_path_factory.mktemp("dynalite")) as server:
        yield server


def _table() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def dynamodb_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A table of the test's own (created by the store on first use): on the DynamoDB that
    ``KERNEL_DYNAMODB_TEST_URL`` names (deleted afterwards), else on moto's server."""
    real = test_url()
    if not real:
        server: MotoServer = request.getfixturevalue("moto")
        yield server.url(_table())
        return
    table = _table()
    url = urlunsplit(urlsplit(real)._replace(path="/" + table))
    yield url
    store = DynamoDBStore(url, {})
    try:
        store.table.client().delete_table(TableName=table)
    except Exception:  # noqa: BLE001 - never created, or already gone
        pass
    finally:
        store.close()


@pytest.fixture
def dynalite_url(dynalite: Dynalite) -> str:
    return dynalite.url(_table())


@pytest.fixture
def make_store() -> Iterator[Callable[..., DynamoDBStore]]:
    """``make_store(url, **config)``: the store an App with that config would use."""
    with app_stores(DynamoDBStore, "dynamodb-tests") as make:
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
