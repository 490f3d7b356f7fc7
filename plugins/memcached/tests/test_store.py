"""What the Memcached store adds beyond the suite: Celery's keys and expiry, a clear sentence
for a value over the item limit and for a server that cannot be reached, connections of its
own in a forked child, and service again after the server restarts under it."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pymemcache.client.base import Client

from kernel.plugin import ConnectionFailed, ResultTooLarge
from kernel.testing.servers import free_port
from kernel.testing.transport import wait_for
from kernel_memcached.store import MemcachedStore, exptime, item_key
from kernel_memcached.testing import MemcachedServer


def raw(server_url: str) -> Client:
    host, port = server_url.removeprefix("cache+memcached://").rstrip("/").split(":")
    return Client((host, int(port)))


def test_records_sit_under_celerys_keys_as_the_bytes_given(memcached_url: str) -> None:
    key = f"celery-task-meta-{uuid.uuid4()}"
    store = MemcachedStore(memcached_url, {})
    try:
        store.set([(key, b'{"status": "SUCCESS", "result": 5}')], 60)
        assert raw(memcached_url).get(key) == b'{"status": "SUCCESS", "result": 5}', \
            "Celery's cache backend reads the record under the key itself, unchanged"
    finally:
        store.close()


def test_keys_memcached_refuses_are_stored_under_a_digest() -> None:
    assert item_key("celery-task-meta-1") == b"celery-task-meta-1"
    for awkward in ("sp ace", "k" * 251, "żółw", "kernel-sha256:x"):
        assert item_key(awkward).startswith(b"kernel-sha256:"), awkward
    assert item_key("sp ace") != item_key("sp_ace")


def test_expiry_is_memcacheds_time_to_live() -> None:
    assert exptime(None) == 0
    assert exptime(0.2) == 2, "a second is added: memcached's clock ticks in whole seconds"
    assert exptime(86400) == 86401
    month = exptime(60 * 86400)
    assert abs(month - (time.time() + 60 * 86400)) < 5, \
        "over 30 days memcached reads an absolute time"


def test_a_value_over_the_item_limit_gets_a_sentence_and_the_rest_is_stored(
        tmp_path: Path) -> None:
    with MemcachedServer(tmp_path) as server:  # the default 1 MiB items
        store = MemcachedStore(server.url, {})
        key = f"celery-task-meta-{uuid.uuid4()}"
        try:
            with pytest.raises(ResultTooLarge, match="more than Memcached .* keeps in one item.*"
                                                     "return less from the task"):
                store.set([(key, b"x" * (2 * 1024 * 1024)), (key + "-small", b"ok")], None)
            assert store.get(key + "-small") == b"ok", "what fits must be stored"
            assert store.get(key) is None
        finally:
            store.close()


def test_an_unreachable_server_fails_in_time_with_a_masked_sentence() -> None:
    url = f"cache+memcached://127.0.0.1:{free_port()}/"
    store = MemcachedStore(url, {"connection_timeout": 1})
    start = time.monotonic()
    with pytest.raises(ConnectionFailed, match="cannot reach Memcached at .* within 1 s"):
        store.get("celery-task-meta-x")
    assert time.monotonic() - start < 3, "connection_timeout bounds a call"
    assert "127.0.0.1" in repr(store)


def _child_uses(store: MemcachedStore, key: str, out: multiprocessing.SimpleQueue[object]) -> None:
    try:
        store.set([(key, b"from the child")], None)
        out.put((id(store._connection()), store.get(key)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        out.put(exc)


def test_a_forked_child_opens_connections_of_its_own(memcached_url: str) -> None:
    store = MemcachedStore(memcached_url, {})
    key = f"suite-{uuid.uuid4().hex}"
    try:
        store.set([(key, b"parent")], None)
        parent_client = store._connection()
        ctx = multiprocessing.get_context("fork")
        out: multiprocessing.SimpleQueue[object] = ctx.SimpleQueue()
        child = ctx.Process(target=_child_uses, args=(store, key, out))
        child.start()
        child.join(20)
        got = out.get()
        assert not isinstance(got, BaseException), got
        client_id, value = got  # type: ignore[misc]
        assert value == b"from the child"
        assert client_id != id(parent_client), "the child must not use the parent's client"
        assert store._connection() is parent_client, "the parent keeps its own"
        assert store.get(key) == b"from the child"
    finally:
        store.close()


def test_the_store_serves_again_after_the_server_restarts(tmp_path: Path) -> None:
    server = MemcachedServer(tmp_path).start()
    store = MemcachedStore(server.url, {"connection_timeout": 4})
    key = f"celery-task-meta-{uuid.uuid4()}"
    try:
        store.set([(key, b"before")], None)
        assert store.incr(key + ".n") == 1
        server.stop()
        with pytest.raises(ConnectionFailed):
            store.get(key)
        server.start()
        # Pooled connections to the old process are dead: the store drops and replaces them.
        wait_for(lambda: store.get(key) is None, 10, "reads from the restarted server")
        store.set([(key, b"after")], None)
        assert store.get(key) == b"after"
        assert store.incr(key + ".n") == 1, "a restarted memcached has forgotten every item"
    finally:
        store.close()
        server.stop()


def test_a_restart_during_use_is_ridden_out_within_connection_timeout(tmp_path: Path) -> None:
    server = MemcachedServer(tmp_path).start()
    store = MemcachedStore(server.url, {"connection_timeout": 6})
    key = f"celery-task-meta-{uuid.uuid4()}"
    try:
        store.set([(key, b"v")], None)
        server.stop()
        restarting = threading.Timer(0.5, server.start)
        restarting.start()
        store.set([(key, b"written across the restart")], None)  # retried, not failed
        restarting.join()
        assert store.get(key) == b"written across the restart"
    finally:
        store.close()
        server.stop()


def test_counting_after_a_restart_does_not_meet_the_old_servers_connections(
        tmp_path: Path) -> None:
    """Pooled connections to the stopped process are closed by the time the new one answers:
    an incr sent on one fails after its bytes were written, which cannot be told from a lost
    reply (so it is never sent again). The store drops such connections before counting."""
    server = MemcachedServer(tmp_path).start()
    store = MemcachedStore(server.url, {"connection_timeout": 4})
    key = f"celery-task-meta-{uuid.uuid4()}"
    try:
        with ThreadPoolExecutor(8) as pool:  # several threads at once: several connections
            list(pool.map(lambda _: [store.get(key) for _ in range(50)], range(8)))
        idle = len(store._connection().client_pool.free)
        assert idle >= 2, "the test needs several pooled connections"
        server.stop()
        server.start()
        counts = [store.incr(key + ".n") for _ in range(idle + 1)]
        assert counts == list(range(1, idle + 2)), "each count counted once, none refused"
    finally:
        store.close()
        server.stop()
