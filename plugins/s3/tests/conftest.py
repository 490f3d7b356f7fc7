"""Shared fixtures: moto's S3 server and s3rver of the tests' own (each started once, on a free
port), a bucket per test, the Redis broker the interop tests run Celery and kernel on, and real
Celery workers.

``KERNEL_S3_TEST_ENDPOINT`` (with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) puts the moto
tests on that endpoint instead. Without moto, s3rver or a reachable Redis the tests that need
them skip, except under CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kernel.testing.workers import CeleryWorkerProcess, celery_workers
from kernel_redis.testing import reachable
from kernel_s3.testing import MotoServer, S3rver, S3Server, endpoint_from_environment

REDIS_URL = os.environ.get("KERNEL_REDIS_TEST_URL", "redis://127.0.0.1:6379/13")


class RemoteS3(S3Server):
    """An S3 endpoint named by KERNEL_S3_TEST_ENDPOINT: nothing to start."""

    def __init__(self, endpoint: str) -> None:  # noqa: D107 - no process
        self._endpoint = endpoint
        self.access_key = os.environ.get("AWS_ACCESS_KEY_ID", "testing")
        self.secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY", "testing")

    @property
    def endpoint(self) -> str:
        return self._endpoint


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    remote = endpoint_from_environment()
    if remote:
        yield RemoteS3(remote)
        return
    with MotoServer(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="session")
def s3rver_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3rver]:
    with S3rver(tmp_path_factory.mktemp("s3rver")) as server:
        yield server


@pytest.fixture
def new_bucket() -> Callable[[S3Server], str]:
    """Create a bucket of the test's own on a server: call it with the server."""

    def create(server: S3Server) -> str:
        name = f"results-{uuid.uuid4().hex[:16]}"
        server.client().create_bucket(Bucket=name)
        return name

    return create


@pytest.fixture
def s3_options(moto: S3Server, new_bucket: Callable[[S3Server], str]) -> dict[str, Any]:
    """The settings of a store on a bucket of the test's own, on moto."""
    return moto.options(new_bucket(moto))


@pytest.fixture(scope="session")
def redis_url() -> str:
    return reachable(REDIS_URL, "Redis, the interop tests' broker,")


@pytest.fixture
def celery_worker(tmp_path: Path) -> Iterator[Callable[[str, str, str], CeleryWorkerProcess]]:
    """Start a real Celery worker (solo pool) on a queue from module source: call it with
    ``(module name, source, queue)``; its log is ``<module>.log`` in the test's tmp_path."""
    with celery_workers(tmp_path) as start:
        yield start
