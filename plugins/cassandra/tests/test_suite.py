"""The kernel's conformance suite on mockylla, an in-process fake of cassandra-driver's cluster
(no CQL server runs here), or on the real cluster ``KERNEL_TEST_CASSANDRA_URL`` names: every
guarantee of the result-store contract, expiry by ``USING TTL`` and adds by lightweight
transactions included. What the fake cannot prove (that a real node honours the statements as
it does) is said in kernel_cassandra/testing.py and docs/stores/cassandra.md."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kernel.testing.results import ResultStoreSuite
from kernel_cassandra.store import CassandraStore


class TestCassandraStore(ResultStoreSuite):
    @pytest.fixture
    def store(self, cassandra_url: str,
              make_store: Callable[..., CassandraStore]) -> CassandraStore:
        return make_store(cassandra_url)
