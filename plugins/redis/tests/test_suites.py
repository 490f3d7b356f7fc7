"""The kernel conformance suites against a real Redis: the transport and the result store must
keep every guarantee of their contracts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kernel.testing.results import ResultStoreSuite
from kernel.testing.transport import TransportSuite
from kernel_redis.results import RedisResultStore
from kernel_redis.transport import RedisTransport


class TestRedisTransport(TransportSuite):
    lease_seconds = 1.0

    @pytest.fixture
    def transport(self, redis_url: str) -> Iterator[RedisTransport]:
        t = RedisTransport(redis_url, {})
        yield t
        t.close()

    @pytest.fixture
    def other_transport(self, redis_url: str) -> Iterator[RedisTransport]:
        t = RedisTransport(redis_url, {})
        yield t
        t.close()

    @pytest.fixture
    def short_lease_transport(self, redis_url: str) -> Iterator[RedisTransport]:
        t = RedisTransport(redis_url, {"lease_seconds": self.lease_seconds})
        yield t
        t.close()


class TestRedisResultStore(ResultStoreSuite):
    @pytest.fixture
    def store(self, redis_url: str) -> Iterator[RedisResultStore]:
        s = RedisResultStore(redis_url, {})
        yield s
        s.close()
