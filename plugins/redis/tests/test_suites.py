"""The kernel conformance suites against a real Redis: the transport (with broadcast), the
result store and the rate-limit store must keep every guarantee of their contracts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kernel.testing.broadcast import BroadcastSuite
from kernel.testing.ratelimit import RateLimitStoreSuite
from kernel.testing.results import ResultStoreSuite
from kernel.testing.transport import TransportSuite
from kernel_redis.ratelimit import RedisRateLimitStore
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


class TestRedisBroadcast(BroadcastSuite):
    transport = TestRedisTransport.transport
    other_transport = TestRedisTransport.other_transport


class TestRedisRateLimitStore(RateLimitStoreSuite):
    @pytest.fixture
    def store(self, redis_url: str) -> Iterator[RedisRateLimitStore]:
        s = RedisRateLimitStore(redis_url, {})
        yield s
        s.close()

    other_store = store


class TestRedisResultStore(ResultStoreSuite):
    @pytest.fixture
    def store(self, redis_url: str) -> Iterator[RedisResultStore]:
        s = RedisResultStore(redis_url, {})
        yield s
        s.close()
