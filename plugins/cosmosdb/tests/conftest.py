"""Shared fixtures: emulators of the tests' own (started once, on free ports): one over HTTPS
with its self-signed certificate, one over plain HTTP behind `CosmosProxy` (Celery's URL form,
and faults on demand); the Redis broker the interop tests run Celery and kernel on; real
Celery workers.

``KERNEL_COSMOSDB_TEST_URL`` names a real account to run the URL-taking tests against instead
of the HTTPS emulator. Without the emulator or a reachable Redis the tests that need them
skip, except under CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from kernel.testing.workers import CeleryWorkerProcess, celery_workers
from kernel_cosmosdb.testing import CosmosProxy, CosmosServer
from kernel_redis.testing import reachable

REDIS_URL = os.environ.get("KERNEL_REDIS_TEST_URL", "redis://127.0.0.1:6379/13")
ACCOUNT_URL = os.environ.get("KERNEL_COSMOSDB_TEST_URL")


def with_database(url: str, database: str) -> str:
    """`url` with its own database (the query carries the setting)."""
    return f"{url}{'&' if '?' in url else '?'}cosmosdbsql_database_name={quote(database)}"


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CosmosServer]:
    with CosmosServer(tmp_path_factory.mktemp("cosmos")) as server:
        yield server


@pytest.fixture(scope="session")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CosmosProxy]:
    with CosmosServer(tmp_path_factory.mktemp("cosmos-http"), tls=False) as server, \
            CosmosProxy(server.port) as front:
        yield front


@pytest.fixture
def database() -> str:
    return f"results-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def cosmos_url(request: pytest.FixtureRequest, database: str) -> str:
    """A database of the test's own (created by the store on first use), on the account of
    ``KERNEL_COSMOSDB_TEST_URL`` or the HTTPS emulator."""
    if ACCOUNT_URL:
        return with_database(ACCOUNT_URL, database)
    emulator: CosmosServer = request.getfixturevalue("emulator")
    return with_database(emulator.url(), database)


@pytest.fixture
def proxy_url(proxy: CosmosProxy, database: str) -> Iterator[str]:
    """Celery's plain-HTTP form through `CosmosProxy`, a database of the test's own."""
    proxy.clear()
    yield with_database(proxy.url(), database)
    proxy.clear()


@pytest.fixture(scope="session")
def redis_url() -> str:
    return reachable(REDIS_URL, "Redis, the interop tests' broker,")


@pytest.fixture
def celery_worker(tmp_path: Path) -> Iterator[Callable[[str, str, str], CeleryWorkerProcess]]:
    """Start a real Celery worker (solo pool) on a queue from module source: call it with
    ``(module name, source, queue)``; its log is ``<module>.log`` in the test's tmp_path."""
    with celery_workers(tmp_path) as start:
        yield start
