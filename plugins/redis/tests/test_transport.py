"""What the Redis transport adds beyond the suite: the kombu layout Celery reads (priority
sub-lists, the unacked hash), leases restored exactly once when consumers race, delays
promoted exactly once, and outages reported as ConnectionFailed."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import redis

from kernel.plugin import ConnectionFailed
from kernel.interfaces.transport import Delivery, Outgoing
from kernel.testing.transport import make_envelope, wait_for
from kernel_redis.transport import (
    LEASES,
    RedisTransport,
    SEP,
    UNACKED,
    UNACKED_INDEX,
    wire_priority,
)
from kernel_redis.testing import RedisServer


@pytest.fixture
def queue() -> str:
    return f"rq-{uuid.uuid4().hex}"


@pytest.fixture
def connect(redis_url: str) -> Iterator[Callable[..., RedisTransport]]:
    opened: list[RedisTransport] = []

    def open_one(**options: object) -> RedisTransport:
        t = RedisTransport(redis_url, options)
        opened.append(t)
        return t

    yield open_one
    for t in opened:
        t.close()


def ids(deliveries: Sequence[Delivery]) -> list[str]:
    return [d.envelope.headers["id"] for d in deliveries]


def race(consumers: Sequence[RedisTransport], queue: str, stop: Callable[[list[Delivery]], bool],
         timeout: float = 15.0) -> list[Delivery]:
    """Consumers fetch (acking) in parallel until `stop(received)` or `timeout`."""
    received: list[Delivery] = []
    lock = threading.Lock()
    deadline = time.monotonic() + timeout
    start = threading.Barrier(len(consumers))

    def consume(t: RedisTransport) -> None:
        start.wait(5)
        while time.monotonic() < deadline:
            with lock:
                if stop(received):
                    return
            batch = t.fetch([queue], 5, 0.2)
            t.ack(batch)
            with lock:
                received.extend(batch)

    threads = [threading.Thread(target=consume, args=(t,)) for t in consumers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 5)
    return received


# ------------------------------------------------------------------------ kombu layout


def test_priority_mapping_on_the_wire(connect: Callable[..., RedisTransport],
                                      raw_redis: redis.Redis, queue: str) -> None:
    t = connect()
    t.publish([Outgoing(queue, make_envelope(n), priority=p)
               for n, p in enumerate([9, 7, 5, 2, 0])])
    # kernel p -> kombu 9 - p -> the largest step <= it: 9,7 -> 0,2 -> q; 5 -> 4 -> step 3;
    # 2 -> 7 -> step 6; 0 -> 9 -> step 9.
    expected = {queue: [0, 2], f"{queue}{SEP}3": [4], f"{queue}{SEP}6": [7],
                f"{queue}{SEP}9": [9]}
    for key, wire in expected.items():
        stored = [json.loads(raw) for raw in reversed(raw_redis.lrange(key, 0, -1))]
        assert [m["properties"]["priority"] for m in stored] == wire, \
            f"list {key!r} must hold the kombu priorities {wire}; check kernel p -> 9 - p"
    got = t.fetch([queue], 10, 1)
    assert ids(got) == ["m-0", "m-1", "m-2", "m-3", "m-4"]
    assert [d.envelope.properties["priority"] for d in got] == [9, 7, 5, 2, 0], \
        "fetch must turn wire priorities back into kernel ones"
    assert wire_priority(wire_priority(3)) == 3


def test_celery_produced_messages_are_served_kombu_order(
        connect: Callable[..., RedisTransport], raw_redis: redis.Redis, queue: str) -> None:
    def kombu_message(n: int, priority: int) -> bytes:
        body = base64.b64encode(b'[[%d], {}, {}]' % n).decode()
        return json.dumps({
            "body": body, "content-encoding": "utf-8", "content-type": "application/json",
            "headers": {"lang": "py", "task": "t", "id": f"c-{n}"},
            "properties": {"delivery_tag": str(uuid.uuid4()), "body_encoding": "base64",
                           "priority": priority,
                           "delivery_info": {"exchange": "", "routing_key": queue}}}).encode()

    # as kombu's producer does: priority 9 (lowest on Redis) into step 9, 0 into the bare list
    raw_redis.lpush(f"{queue}{SEP}9", kombu_message(1, 9))
    raw_redis.lpush(queue, kombu_message(2, 0))
    got = connect().fetch([queue], 2, 1)
    assert ids(got) == ["c-2", "c-1"], "kombu priority 0 must be served before 9"
    assert [d.envelope.properties["priority"] for d in got] == [9, 0]
    assert got[0].envelope.body == b"[[2], {}, {}]"


def test_held_message_is_in_kombus_unacked_hash(connect: Callable[..., RedisTransport],
                                                raw_redis: redis.Redis, queue: str) -> None:
    t = connect()
    t.publish([Outgoing(queue, make_envelope(1))])
    (held,) = t.fetch([queue], 1, 1)
    entry = raw_redis.hget(UNACKED, held.tag)
    assert entry is not None, "a held message must be in the 'unacked' hash"
    envelope, exchange, routing_key = json.loads(entry)
    assert (exchange, routing_key) == ("", queue), "entries are [envelope, exchange, rk]"
    assert envelope["headers"]["id"] == "m-1"
    assert envelope["properties"]["delivery_info"]["routing_key"] == queue
    assert raw_redis.zscore(LEASES, held.tag) is not None
    t.ack([held])
    assert raw_redis.hget(UNACKED, held.tag) is None and \
        raw_redis.zscore(LEASES, held.tag) is None, "ack must remove the hash entry and lease"


def test_idle_fetch_claims_messages_other_producers_write(connect: Callable[..., RedisTransport],
                                                  raw_redis: redis.Redis, queue: str) -> None:
    t = connect(sweep_interval=0.3)
    started = time.monotonic()
    got: list[Delivery] = []
    waiter = threading.Thread(target=lambda: got.extend(t.fetch([queue], 1, 10)))
    waiter.start()
    # As a Celery producer writes: no wake-up token, so only the next sweep claims it.
    raw_redis.lpush(queue, make_envelope(1).to_json(queue))
    waiter.join(10)
    assert ids(got) == ["m-1"], "a message from another producer is found by the idle sweep"
    assert time.monotonic() - started < 3, "within a sweep interval or so, not the timeout"
    assert raw_redis.hget(UNACKED, got[0].tag) is not None, "claimed and held in one step"
    t.ack(got)


def test_an_unreadable_message_in_a_batch_is_dead_lettered_alone(
        connect: Callable[..., RedisTransport], raw_redis: redis.Redis, queue: str) -> None:
    """A message nested deeper than the JSON decoder's recursion limit, beside valid ones, in
    one claim: the valid ones are delivered, it goes to the dead-letter queue at once with the
    reason (before: the claim raised, the batch came back when its lease ended, and again,
    forever)."""
    t = connect()
    t.publish([Outgoing(queue, make_envelope(1))])
    raw_redis.lpush(queue, b'{"body": ' + b"[" * 50_000 + b"]" * 50_000 + b"}")
    t.publish([Outgoing(queue, make_envelope(2))])
    got = t.fetch([queue], 10, 1)
    assert sorted(ids(got)) == ["m-1", "m-2"], "the readable messages are delivered"
    [dead] = t.dead_letters(queue)
    assert "JSON envelope" in dead.extra["reason"], dead.extra
    assert t.fetch([queue], 10, 0.5) == [], "the unreadable one never comes back"
    t.ack(got)


# ------------------------------------------------------------------------ leases


def test_expired_leases_restored_exactly_once_with_racing_sweepers(
        connect: Callable[..., RedisTransport], queue: str) -> None:
    dying = connect(lease_seconds=0.5)
    dying.publish([Outgoing(queue, make_envelope(n)) for n in range(40)])
    held = dying.fetch([queue], 40, 2)
    assert len(held) == 40
    # `dying` never acks: its consumer died. Three others race to sweep and consume.
    sweepers = [connect(sweep_interval=0.05) for _ in range(3)]
    got = race(sweepers, queue, lambda received: len(received) >= 40)
    assert sorted(ids(got)) == sorted(ids(held)), \
        "every message of the dead consumer must come back exactly once"
    assert {d.delivery_count for d in got} == {2}, "a restored message counts a redelivery"
    dying.ack(held)  # too late: the messages went elsewhere; this must change nothing
    assert connect().fetch([queue], 1, 0.2) == []


def test_release_restores_the_count_and_the_head(connect: Callable[..., RedisTransport],
                                                 queue: str) -> None:
    t = connect()
    t.publish([Outgoing(queue, make_envelope(n)) for n in range(3)])
    first = t.fetch([queue], 1, 1)
    t.release(first)
    again = t.fetch([queue], 3, 1)
    assert ids(again) == ["m-0", "m-1", "m-2"], "a released message goes back to the head"
    assert [d.delivery_count for d in again] == [1, 1, 1]


# ------------------------------------------------------------------------ delays


def test_delayed_messages_delivered_once_to_racing_consumers(
        connect: Callable[..., RedisTransport], queue: str) -> None:
    due = time.time() + 0.7
    connect().publish([Outgoing(queue, make_envelope(n), not_before=due) for n in range(30)])
    got = race([connect() for _ in range(3)], queue, lambda received: len(received) >= 30)
    arrived = time.time()
    assert sorted(ids(got)) == sorted(f"m-{n}" for n in range(30)), \
        "each delayed message must be delivered exactly once"
    assert arrived >= due
    assert connect().size(queue) == 0


def test_idle_fetch_wakes_for_a_delayed_message(connect: Callable[..., RedisTransport],
                                                queue: str) -> None:
    t = connect(sweep_interval=30)
    due = time.time() + 0.5
    t.publish([Outgoing(queue, make_envelope(1), not_before=due)])
    got = t.fetch([queue], 1, 10)
    assert ids(got) == ["m-1"]
    assert time.time() - due < 0.3, "the fetch must sleep no longer than the earliest due time"


# ------------------------------------------------------------------------ outages


def test_unreachable_redis_is_connection_failed() -> None:
    t = RedisTransport("redis://127.0.0.1:1/0", {"retries": 1, "socket_connect_timeout": 0.5})
    with pytest.raises(ConnectionFailed, match="cannot reach Redis"):
        t.fetch(["q"], 1, 0.1)
    with pytest.raises(ConnectionFailed):
        t.publish([Outgoing("q", make_envelope(1))])
    t.close()


def test_password_is_not_in_error_messages() -> None:
    t = RedisTransport("redis://:s3cret@127.0.0.1:1/0", {"retries": 0,
                                                          "socket_connect_timeout": 0.5})
    with pytest.raises(ConnectionFailed) as info:
        t.size("q")
    assert "s3cret" not in str(info.value)
    t.close()


def test_consumption_resumes_after_a_server_restart(queue: str, tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    t = RedisTransport(server.url, {"retries": 2, "retry_backoff_cap": 0.1})
    try:
        t.publish([Outgoing(queue, make_envelope(1))])
        assert ids(t.fetch([queue], 1, 1)) == ["m-1"]
        server.kill()
        with pytest.raises(ConnectionFailed, match="cannot reach Redis"):
            t.fetch([queue], 1, 0.5)
        server.start()
        t.publish([Outgoing(queue, make_envelope(2))])
        assert ids(t.fetch([queue], 1, 2)) == ["m-2"], \
            "the same transport must work again once Redis is back"
    finally:
        t.close()
        server.kill()


def test_a_waiting_fetch_claims_after_the_server_lost_its_scripts(queue: str,
                                                                  tmp_path: Path) -> None:
    # A private server: on the shared one, parallel tests reload the claim script at any time.
    server = RedisServer(tmp_path).start()
    consumer, producer = RedisTransport(server.url), RedisTransport(server.url)
    client = redis.Redis.from_url(server.url)
    try:
        assert consumer.fetch([queue], 1, 0) == []  # the claim script is loaded now
        got: list[Delivery] = []
        waiter = threading.Thread(target=lambda: got.extend(consumer.fetch([queue], 1, 10)))
        waiter.start()
        wait_for(lambda: any(c["cmd"] == "brpop" for c in client.client_list()), 5,
                 "the consumer never blocked for a wake-up token")
        client.script_flush()  # what a restart or a failover does to the scripts
        producer.publish([Outgoing(queue, make_envelope(1))])
        waiter.join(10)
        assert ids(got) == ["m-1"], "the claim after the wake-up reloads the script"
    finally:
        for t in (consumer, producer):
            t.close()
        client.close()
        server.kill()


# ------------------------------------------------------------------------ Celery's sweeper


def test_unacked_index_follows_the_lease(connect: Callable[..., RedisTransport],
                                         raw_redis: redis.Redis, queue: str) -> None:
    t = connect(lease_seconds=30, visibility_timeout=600)
    t.publish([Outgoing(queue, make_envelope(1))])
    (held,) = t.fetch([queue], 1, 1)
    lease_end = raw_redis.zscore(LEASES, held.tag)
    assert lease_end is not None
    assert raw_redis.zscore(UNACKED_INDEX, held.tag) == pytest.approx(lease_end - 600), \
        "kombu restores one visibility_timeout after the index score: score = lease end - vt"
    t.extend_lease([held], 300)
    lease_end = raw_redis.zscore(LEASES, held.tag)
    assert lease_end is not None
    assert raw_redis.zscore(UNACKED_INDEX, held.tag) == pytest.approx(lease_end - 600), \
        "extend_lease must move the index entry with the lease"
    t.ack([held])
    assert raw_redis.zscore(UNACKED_INDEX, held.tag) is None, "ack must remove the index entry"


def test_celerys_sweeper_waits_for_the_lease_and_restores_once(queue: str,
                                                               tmp_path: Path) -> None:
    kombu = pytest.importorskip("kombu") if not os.environ.get("CI") else __import__("kombu")
    # A private server: on the shared one another test's fetch could sweep the lease first.
    server = RedisServer(tmp_path).start()
    dying = RedisTransport(server.url, {"lease_seconds": 2, "visibility_timeout": 60})
    other = RedisTransport(server.url, {"sweep_interval": 30})
    try:
        dying.publish([Outgoing(queue, make_envelope(1))])
        (held,) = dying.fetch([queue], 1, 1)
        with kombu.Connection(server.url, transport_options={"visibility_timeout": 60}) as conn:
            qos = conn.default_channel.qos

            def celery_sweeps() -> bool:
                qos.restore_visible(num=1000, interval=1)
                return other.size(queue) == 1

            assert not celery_sweeps(), "Celery's sweeper must leave a live kernel lease alone"
            wait_for(celery_sweeps, 10, "Celery's sweeper to restore the message after the lease")
        (again,) = other.fetch([queue], 1, 2)
        assert again.envelope.headers["id"] == "m-1" and again.delivery_count == 2
        other.ack([again])
        assert other.fetch([queue], 1, 0.5) == [], "nobody may restore it a second time"
    finally:
        dying.close()
        other.close()
        server.kill()
