"""Conformance suite for rate-limit stores (`kernel.interfaces.ratelimit.RateLimitStore`).

Subclass it and give it two fixtures, two instances opened on the same URL (the second stands
for another worker process)::

    from kernel.testing.ratelimit import RateLimitStoreSuite

    class TestMyBuckets(RateLimitStoreSuite):
        @pytest.fixture
        def store(self):
            s = MyBuckets(URL, {}); yield s; s.close()

        @pytest.fixture
        def other_store(self):
            s = MyBuckets(URL, {}); yield s; s.close()

Tests use a fresh bucket key each, so one server serves them all, also under pytest-xdist.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from kernel.interfaces.ratelimit import RateLimitStore
from kernel.testing.transport import wait_for

__all__ = ["RateLimitStoreSuite"]


class RateLimitStoreSuite:
    """The guarantees of `RateLimitStore.take`, one test each."""

    @pytest.fixture
    def store(self) -> Iterator[RateLimitStore]:
        pytest.fail("override the `store` fixture to return a fresh instance of your "
                    "rate-limit store (and close it afterwards)")
        yield  # pragma: no cover

    @pytest.fixture
    def other_store(self) -> Iterator[RateLimitStore]:
        pytest.fail("override the `other_store` fixture: a second instance on the same URL")
        yield  # pragma: no cover

    @pytest.fixture
    def key(self) -> str:
        return f"suite-{uuid.uuid4().hex}"

    def test_a_new_bucket_is_full(self, store: RateLimitStore, key: str) -> None:
        assert store.take(key, 1.0, 3.0) == 0.0, "a bucket never used must start full"
        assert store.take(key, 1.0, 3.0) == 0.0
        assert store.take(key, 1.0, 3.0) == 0.0
        assert store.take(key, 1.0, 3.0) > 0, "a bucket of capacity 3 gave a 4th token at once"

    def test_an_empty_bucket_says_how_long_to_wait(self, store: RateLimitStore, key: str) -> None:
        assert store.take(key, 2.0) == 0.0
        started = time.monotonic()
        wait = store.take(key, 2.0)
        assert 0 < wait <= 0.5 + 0.05, f"rate 2/s: the next token is at most 0.5 s away, the " \
                                        f"store said {wait}"
        assert time.monotonic() - started < 0.5, "take must answer at once, never block"

    def test_the_token_comes_after_the_wait(self, store: RateLimitStore, key: str) -> None:
        assert store.take(key, 10.0) == 0.0
        started = time.monotonic()
        wait_for(lambda: store.take(key, 10.0) == 0.0, timeout=2.0,
                 message="a token at 10/s within 2 s; check the refill arithmetic")
        assert time.monotonic() - started >= 0.05, "a token came back far sooner than 1/rate"

    def test_buckets_are_independent(self, store: RateLimitStore, key: str) -> None:
        assert store.take(key, 0.1) == 0.0
        assert store.take(key, 0.1) > 0
        assert store.take(key + "-other", 0.1) == 0.0, "an empty bucket drained another key"

    def test_the_rate_holds_across_instances_and_threads(
            self, store: RateLimitStore, other_store: RateLimitStore, key: str) -> None:
        rate, window = 20.0, 1.0
        taken: list[float] = []
        lock = threading.Lock()
        deadline = time.monotonic() + window
        started = time.monotonic()

        def hammer(s: RateLimitStore) -> None:
            while time.monotonic() < deadline:
                if s.take(key, rate) == 0.0:
                    with lock:
                        taken.append(time.monotonic())

        threads = [threading.Thread(target=hammer, args=(s,))
                   for s in (store, other_store) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        assert len(taken) <= 1 + rate * elapsed + 1, (
            f"{len(taken)} tokens in {elapsed:.2f} s at {rate}/s from two instances: take is "
            f"not atomic across connections")
        assert len(taken) >= rate * window / 2, (
            f"only {len(taken)} tokens in {elapsed:.2f} s at {rate}/s: the bucket does not "
            f"refill at its rate")
