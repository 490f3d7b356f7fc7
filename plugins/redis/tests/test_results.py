"""What the Redis result store adds beyond the suite: Celery's write pattern (one transaction
that stores and publishes on the key's own channel) and a pushed wait."""

from __future__ import annotations

import threading
import time
import uuid

import redis

from kernel_redis.results import RedisResultStore
from kernel.testing.transport import wait_for


def test_set_publishes_on_the_key_channel(redis_url: str, raw_redis: redis.Redis) -> None:
    key = f"celery-task-meta-{uuid.uuid4()}"
    pubsub = raw_redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    pubsub.subscribe(key)
    store = RedisResultStore(redis_url)
    try:
        store.set([(key, b'{"status": "SUCCESS", "result": 5}')], 60)
        message = wait_for(lambda: pubsub.get_message(timeout=0.1), 5,
                           "the value published on the key's channel")
        assert message["data"] == b'{"status": "SUCCESS", "result": 5}', \
            "Celery clients wait on a channel named after the key; set must publish there"
        ttl = raw_redis.ttl(key)
        assert 55 <= ttl <= 60, f"the key must expire in 60 s like SETEX (ttl {ttl})"
    finally:
        pubsub.close()
        store.close()


def test_wait_is_pushed_not_polled(redis_url: str) -> None:
    store = RedisResultStore(redis_url)
    key = f"suite-{uuid.uuid4().hex}"
    latencies: list[float] = []
    try:
        for n in range(5):
            written: list[float] = []

            def write(value: bytes = b"%d" % n, written: list[float] = written) -> None:
                written.append(time.monotonic())
                store.set([(key, value)], None)

            store.delete([key])
            timer = threading.Timer(0.1, write)
            timer.start()
            cpu = time.process_time()
            assert store.wait(key, 5) == b"%d" % n
            latencies.append(time.monotonic() - written[0])
            timer.join()
            assert time.process_time() - cpu < 0.05, "an idle wait must not spin"
    finally:
        store.close()
    assert sorted(latencies)[2] < 0.05, \
        f"pushed waits return within milliseconds of the write (median {sorted(latencies)[2]})"


def test_waits_reuse_subscriber_connections_and_never_see_stale_messages(
        redis_url: str, raw_redis: redis.Redis) -> None:
    """A client waiting for result after result opens no connection per wait (the handshake
    would cost more than the wait), and a reused subscriber never hands one key's value to
    the wait for another."""
    store = RedisResultStore(redis_url)
    try:
        first = f"celery-task-meta-{uuid.uuid4()}"
        store.set([(first, b"1")], 60)
        assert store.wait(first, 5) == b"1"
        (subscriber,) = store._idle
        sock = subscriber.connection._sock  # type: ignore[union-attr]
        for n in range(20):
            key = f"celery-task-meta-{uuid.uuid4()}"
            store.set([(key, b"%d" % n)], 60)
            assert store.wait(key, 5) == b"%d" % n
        assert store._idle == [subscriber], "each wait took a new subscriber"
        assert subscriber.connection._sock is sock, "the subscriber reconnected"  # type: ignore[union-attr]
        other = f"celery-task-meta-{uuid.uuid4()}"
        store.set([(first, b"again")], 60)  # published to a channel this client just left
        assert store.wait(other, 0.3) is None, "a stale message answered another key's wait"
    finally:
        store.close()


def test_a_kept_subscriber_leaves_its_ended_waits_channels_in_one_go(redis_url: str) -> None:
    """Ending a wait sends nothing (one command fewer per result); the channels of ended waits
    are left all at once after `STALE_SUBSCRIPTIONS`, so a long-lived client's subscriber
    stays subscribed to a bounded number of channels, and waits answer right throughout."""
    from kernel_redis.results import STALE_SUBSCRIPTIONS

    store = RedisResultStore(redis_url)
    try:
        most = 0
        for n in range(3 * STALE_SUBSCRIPTIONS):
            key = f"celery-task-meta-{uuid.uuid4()}"
            store.set([(key, b"%d" % n)], 60)
            assert store.wait(key, 5) == b"%d" % n
            (subscriber,) = store._idle
            most = max(most, len(subscriber.channels))
        assert most == STALE_SUBSCRIPTIONS + 1, f"subscribed to {most} channels at most"
    finally:
        store.close()
