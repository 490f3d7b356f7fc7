"""The kernel's transport conformance suite against the real RabbitMQ."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from kernel.testing.transport import TransportSuite
from kernel_amqp.transport import AmqpTransport


class TestAmqpTransport(TransportSuite):
    @pytest.fixture
    def queue(self, new_queue: Callable[[str], str]) -> str:
        return new_queue("suite")

    @pytest.fixture
    def transport(self, url: str) -> Iterator[AmqpTransport]:
        t = AmqpTransport(url, {})
        yield t
        t.close()

    @pytest.fixture
    def other_transport(self, url: str) -> Iterator[AmqpTransport]:
        t = AmqpTransport(url, {})
        yield t
        t.close()


class TestAmqpQuorumTransport(TransportSuite):
    """The same guarantees on quorum queues (no priorities: the capability says so)."""

    @pytest.fixture
    def queue(self, new_queue: Callable[[str], str]) -> str:
        return new_queue("suite-qq")

    @pytest.fixture
    def transport(self, url: str) -> Iterator[AmqpTransport]:
        t = AmqpTransport(url, {"queue_type": "quorum"})
        yield t
        t.close()

    @pytest.fixture
    def other_transport(self, url: str) -> Iterator[AmqpTransport]:
        t = AmqpTransport(url, {"queue_type": "quorum"})
        yield t
        t.close()
