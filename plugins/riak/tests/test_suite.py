"""The kernel's conformance suite against Riak's HTTP API (the fake of `kernel_riak.testing`,
a thread answering Riak's key/value API; a real node with ``KERNEL_TEST_RIAK_URL``): every
guarantee of the result-store contract that Riak can keep, expiry by a stored deadline and
its cleanup included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kernel.interfaces.results import ResultStore
from kernel.testing.results import ResultStoreSuite
from kernel_riak.store import RiakStore


class TestRiakStore(ResultStoreSuite):
    @pytest.fixture
    def store(self, riak_url: str) -> Iterator[RiakStore]:
        s = RiakStore(riak_url, {})
        yield s
        s.close()

    def test_add_under_threads_keeps_the_first(self, store: ResultStore, key: str) -> None:
        pytest.skip("Riak checks If-None-Match before the write, not with it: two adds at the "
                    "same instant can both store (Riak's HTTP API documentation), so this "
                    "guarantee does not hold on Riak, and the fake does not pretend it does")
