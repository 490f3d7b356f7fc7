"""Fixtures for tests against the real RabbitMQ (``KERNEL_AMQP_URL``, default the local one).

When RabbitMQ cannot be reached the tests are skipped on a developer's machine, but fail in CI
(env ``CI`` set): a plugin whose tests never ran must not look green.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from kernel.testing.servers import unavailable
from kernel.testing.workers import CeleryWorkerProcess, celery_workers
from kernel_amqp.transport import AmqpTransport
from kernel_amqp.testing import RabbitNode, make_certificates

URL = os.environ.get("KERNEL_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 5672), 2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def url() -> str:
    if not _reachable(URL):
        unavailable(f"RabbitMQ is not reachable at {URL.split('@')[-1]}; start it or set "
                    f"KERNEL_AMQP_URL")
    return URL


@pytest.fixture
def new_queue(url: str) -> Iterator[Callable[[str], str]]:
    """Hands out unique queue names and deletes them, with everything the transport declared
    for them, at teardown."""
    names: list[str] = []

    def make(prefix: str = "kq") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        names.append(name)
        return name

    yield make
    cleaner = AmqpTransport(url, {})
    try:
        for name in names:
            for variant in (name, name + "-low", name + "-high"):
                cleaner.delete_queue(variant)
    finally:
        cleaner.close()


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA with server and client certificates (see `make_certificates`)."""
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def private_node(tmp_path_factory: pytest.TempPathFactory,
                 certificates: Path) -> Iterator[RabbitNode]:
    """A RabbitMQ node of this test session's own (tests restart it), with RabbitMQ's
    ``consumer_timeout`` lowered to 2 s and checked every 0.5 s (it is checked once a minute by
    default), so holding a delivery too long shows within a test's time. It also listens for
    TLS (`RabbitNode.tls_url`) with `certificates`: one node for both costs one start."""
    node = RabbitNode(tmp_path_factory.mktemp("rabbit"), config="consumer_timeout = 2000",
                      advanced="[{rabbit, [{channel_tick_interval, 500}]}].",
                      certificates=certificates).start()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def celery() -> Any:
    """The celery package (a test dependency: the interop tests need a real Celery); missing,
    the test skips, except under CI, where that is a failure."""
    try:
        import celery as module
    except ImportError:
        unavailable("needs celery (pip install -e 'plugins/amqp[test]')")
    return module


@pytest.fixture
def celery_worker(celery: Any,
                  tmp_path: Path) -> Iterator[Callable[[str, str, str], CeleryWorkerProcess]]:
    """Start a real Celery worker (solo pool) on a queue from module source: call it with
    ``(module name, source, queue)``; its log is ``<module>.log`` in the test's tmp_path."""
    with celery_workers(tmp_path) as start:
        yield start
