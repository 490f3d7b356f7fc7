"""The Redis schedule store: the conformance suite against the real Redis, the key layout the
module docstring promises (for operators reading Redis), and a schedule that survives a restart
of a persistent Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from kernel import App
from kernel.plugin import ConfigurationError
from kernel.interfaces.schedule import EntryState
from kernel.testing import ScheduleStoreSuite
from kernel_redis.schedule import RedisScheduleStore
from kernel_redis.testing import RedisServer


class TestRedisScheduleStore(ScheduleStoreSuite):
    @pytest.fixture
    def store(self, redis_url: str, namespace: str,
              raw_redis: redis.Redis) -> Iterator[RedisScheduleStore]:
        s = RedisScheduleStore(redis_url, {"schedule_key": namespace})
        yield s
        s.close()
        for key in raw_redis.scan_iter(f"{namespace}:*"):  # the shared server stays tidy
            raw_redis.delete(key)

    @pytest.fixture
    def other_store(self, redis_url: str, namespace: str) -> Iterator[RedisScheduleStore]:
        s = RedisScheduleStore(redis_url, {"schedule_key": namespace})
        yield s
        s.close()


def test_keys_are_laid_out_as_documented(redis_url: str, raw_redis: redis.Redis) -> None:
    prefix = f"layout-{uuid.uuid4().hex}"
    store = RedisScheduleStore(redis_url, {"schedule_key": prefix})
    try:
        token = store.acquire("beat@host", 30)
        assert token == 1
        store.put_entry("report", b"\x00data")
        assert store.claim("report", 1_767_225_600.123456, token)
        assert raw_redis.hgetall(f"{prefix}:lock") == {b"owner": b"beat@host", b"token": b"1"}
        assert 0 < raw_redis.pttl(f"{prefix}:lock") <= 30_000, "the lease expires in Redis"
        assert raw_redis.get(f"{prefix}:fence") == b"1"
        assert raw_redis.hgetall(f"{prefix}:last_run") == {b"report": b"1767225600.123456"}
        assert raw_redis.hgetall(f"{prefix}:run_count") == {b"report": b"1"}
        assert raw_redis.hgetall(f"{prefix}:entries") == {b"report": b"\x00data"}
        assert raw_redis.get(f"{prefix}:version") == b"1"
        for key in ("fence", "last_run", "run_count", "entries", "version"):
            assert raw_redis.ttl(f"{prefix}:{key}") == -1, f"{key} must never expire"
        store.release("beat@host")
        assert not raw_redis.exists(f"{prefix}:lock"), "a release deletes the lock"
    finally:
        store.close()
        raw_redis.delete(*raw_redis.keys(f"{prefix}:*"))


@pytest.mark.timeout(60)
def test_a_restarted_redis_keeps_the_schedule(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", persist=True).start()
    store = RedisScheduleStore(server.url, {"schedule_key": "beat", "retries": 20})
    try:
        token = store.acquire("beat@host", 30)
        assert token is not None
        store.put_entry("report", b"every hour")
        assert store.claim("report", 3600.0, token)
        version = store.version()
        server.kill()  # SIGKILL: what the append-only file holds is all that survives
        server.start()
        assert store.entries() == {"report": b"every hour"}
        assert store.states() == {"report": EntryState(3600.0, 1)}
        assert store.version() == version
        store.release("beat@host")
        again = store.acquire("beat@other-host", 30)
        assert again is not None and again > token, "tokens keep growing after a restart"
        assert not store.claim("report", 3600.0, again), "a claimed tick stays claimed"
    finally:
        store.close()
        server.kill()


def test_a_bad_prefix_is_refused(redis_url: str) -> None:
    with pytest.raises(ConfigurationError, match="'schedule_key' must be a non-empty string"):
        RedisScheduleStore(redis_url, {"schedule_key": ""})


def test_app_finds_the_schedule_store(redis_url: str) -> None:
    app = App("sched-plugin", broker=redis_url)
    try:
        spec = app.plugins.schedule_stores.get("redis+sentinel")
        assert spec.name == "redis"
        store = spec.factory(redis_url, {"schedule_key": f"sched-{uuid.uuid4().hex}"})
        assert isinstance(store, RedisScheduleStore)
        store.close()
    finally:
        app.close()
