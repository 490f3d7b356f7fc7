"""The kernel's conformance suite against a real memcached: every guarantee of the result-store
contract, the atomic counter and chord counting (in Celery's layout) included. Each store is
the one an App makes, so it has the App's result serializer, as chords need."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kernel import App
from kernel.testing.results import ResultStoreSuite
from kernel_memcached.store import MemcachedStore


def app_store(url: str) -> Iterator[MemcachedStore]:
    app = App("memcached-suite", broker="memory://", results=url)
    store = app.backend.store
    assert isinstance(store, MemcachedStore)
    yield store
    app.close()


class TestMemcachedStore(ResultStoreSuite):
    @pytest.fixture
    def store(self, memcached_url: str) -> Iterator[MemcachedStore]:
        yield from app_store(memcached_url)


class TestMemcachedStoreOnTwoServers(ResultStoreSuite):
    """Celery's ``host1;host2`` form: keys spread over both by hash."""

    @pytest.fixture
    def store(self, memcached_url: str, second_memcached_url: str) -> Iterator[MemcachedStore]:
        servers = memcached_url.removeprefix("cache+memcached://").rstrip("/")
        yield from app_store(f"{second_memcached_url.rstrip('/')};{servers}/")
