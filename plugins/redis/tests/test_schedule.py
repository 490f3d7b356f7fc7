"""The Redis schedule store: one leader at a time, fencing tokens that only grow, stale leaders
refused, and a lock that ends by itself when its holder stops renewing."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from kernel.app import App
from kernel.testing.transport import at_once, wait_for
from kernel_redis.schedule import RedisScheduleStore


@pytest.fixture
def stores(redis_url: str) -> Iterator[Callable[[], RedisScheduleStore]]:
    prefix = f"sched-{uuid.uuid4().hex}"
    opened: list[RedisScheduleStore] = []

    def open_one() -> RedisScheduleStore:
        store = RedisScheduleStore(redis_url, {"schedule_key": prefix})
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


def test_only_one_owner_holds_the_lock(stores: Callable[[], RedisScheduleStore]) -> None:
    contenders = [stores() for _ in range(8)]
    tokens = at_once(lambda n: contenders[n].acquire(f"beat-{n}", 30), len(contenders))
    winners = [n for n, token in enumerate(tokens) if token is not None]
    assert len(winners) == 1, f"exactly one of eight racing owners may win, got {tokens}"
    winner = winners[0]
    assert contenders[winner].acquire(f"beat-{winner}", 30) == tokens[winner], \
        "renewing by the holder keeps its token"
    assert contenders[winner - 1].acquire(f"beat-{winner - 1}", 30) is None


def test_token_grows_with_each_new_holder(stores: Callable[[], RedisScheduleStore]) -> None:
    a, b = stores(), stores()
    first = a.acquire("a", 30)
    assert first is not None
    a.release("a")
    second = b.acquire("b", 30)
    b.release("a")  # not the holder: nothing happens
    assert a.acquire("a", 30) is None, "release by a non-holder must not free the lock"
    b.release("b")
    third = a.acquire("a", 30)
    assert second is not None and third is not None
    assert first < second < third, f"fencing tokens must grow: {first}, {second}, {third}"


def test_stale_holder_cannot_save(stores: Callable[[], RedisScheduleStore]) -> None:
    old, new = stores(), stores()
    stale = old.acquire("old", 0.2)
    assert stale is not None
    assert old.save({"tick": 100.0}, stale)
    current = wait_for(lambda: new.acquire("new", 30), 10, "the expired lock to be taken over")
    assert not old.save({"tick": 999.0}, stale), "a stale leader's save must be refused"
    assert new.save({"tick": 200.0, "tock": 50.5}, current)
    assert old.load() == {"tick": 200.0, "tock": 50.5}, "both owners read the current state"
    new.release("new")
    assert not new.save({"tick": 300.0}, current), "after release the token is no longer valid"


def test_lock_expires_after_its_ttl(stores: Callable[[], RedisScheduleStore]) -> None:
    a, b = stores(), stores()
    acquired = time.monotonic()
    assert a.acquire("a", 0.5) is not None
    assert b.acquire("b", 30) is None, "the lock is held until its ttl ends"
    wait_for(lambda: b.acquire("b", 30), 10, "the lock to expire")
    assert time.monotonic() - acquired >= 0.45, "the lock must not end before its ttl"


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
