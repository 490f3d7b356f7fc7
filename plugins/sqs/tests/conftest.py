"""Shared fixtures: moto's server of the tests' own (started once per test process, on a free
port) or the SQS that ``KERNEL_SQS_TEST_URL`` names, transports on it, the Redis the interop
tests keep results in, and real worker processes.

Without moto or a reachable Redis the tests that need them skip, except under CI (``CI``
set), where that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kernel.testing.workers import CeleryWorkerProcess, celery_workers
from kernel_redis.testing import reachable
from kernel_sqs.testing import SQSServer, test_url
from kernel_sqs.transport import SQSTransport

#: where the interop and worker tests keep results.
REDIS_URL = os.environ.get("KERNEL_REDIS_TEST_URL", "redis://127.0.0.1:6379/12")


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQSServer]:
    with SQSServer(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="session")
def sqs_url(request: pytest.FixtureRequest) -> str:
    """The broker URL the tests use: ``KERNEL_SQS_TEST_URL``, else moto's."""
    real = test_url()
    if real:
        return real
    server: SQSServer = request.getfixturevalue("moto")
    return server.url


@pytest.fixture
def make_transport(sqs_url: str) -> Iterator[Callable[..., SQSTransport]]:
    """``make_transport(**options)``: a transport on the tests' SQS, closed afterwards."""
    made: list[SQSTransport] = []

    def make(**options: Any) -> SQSTransport:
        transport = SQSTransport(sqs_url, {"wait_time_seconds": 1, **options})
        made.append(transport)
        return transport

    yield make
    for transport in made:
        transport.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    return reachable(REDIS_URL, "Redis, where the tests keep results,")


@pytest.fixture
def celery_worker(tmp_path: Path) -> Iterator[Callable[[str, str, str], CeleryWorkerProcess]]:
    """Start a real Celery worker (solo pool) on a queue from module source: call it with
    ``(module name, source, queue)``; its log is ``<module>.log`` in the test's tmp_path."""
    with celery_workers(tmp_path) as start:
        yield start
