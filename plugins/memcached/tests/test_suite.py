"""The kernel's conformance suite against a real memcached: every guarantee of the result-store
contract, the atomic counter and chord counting included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kernel.testing.results import ResultStoreSuite
from kernel_memcached.store import MemcachedStore


class TestMemcachedStore(ResultStoreSuite):
    @pytest.fixture
    def store(self, memcached_url: str) -> Iterator[MemcachedStore]:
        s = MemcachedStore(memcached_url, {})
        yield s
        s.close()


class TestMemcachedStoreOnTwoServers(ResultStoreSuite):
    """Celery's ``host1;host2`` form: keys spread over both by hash."""

    @pytest.fixture
    def store(self, memcached_url: str, second_memcached_url: str) -> Iterator[MemcachedStore]:
        servers = memcached_url.removeprefix("cache+memcached://").rstrip("/")
        s = MemcachedStore(f"{second_memcached_url.rstrip('/')};{servers}/", {})
        yield s
        s.close()
