"""Fixtures for tests against the real RabbitMQ (``KERNEL_AMQP_URL``, default the local one).

When RabbitMQ cannot be reached the tests are skipped on a developer's machine, but fail in CI
(env ``CI`` set): a plugin whose tests never ran must not look green.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlparse

import pytest

from kernel_amqp.transport import AmqpTransport

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
        message = (f"RabbitMQ is not reachable at {URL.split('@')[-1]}; start it or set "
                   f"KERNEL_AMQP_URL")
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set, so these tests must run)", pytrace=False)
        pytest.skip(message)
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
