"""The kernel's transport conformance suite on moto's SQS (or the SQS ``KERNEL_SQS_TEST_URL``
names), with every capability the transport declares."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from kernel.testing import TransportSuite
from kernel_sqs.transport import SQSTransport

Make = Callable[..., SQSTransport]


class TestSQSTransport(TransportSuite):
    @pytest.fixture
    def transport(self, make_transport: Make) -> Iterator[SQSTransport]:
        yield make_transport()

    @pytest.fixture
    def other_transport(self, make_transport: Make) -> Iterator[SQSTransport]:
        yield make_transport()

    @pytest.fixture
    def short_lease_transport(self, make_transport: Make) -> Iterator[SQSTransport]:
        yield make_transport(lease_seconds=self.lease_seconds)
