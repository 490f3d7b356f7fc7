"""What the Cosmos DB store adds beyond the suite: Celery's items, ids Cosmos DB refuses, what
the emulator lacks and how the store copes (a missing item read as 500, no TTL), the ETags the
counter stands on, and faults: throttling, a refused key or creation, a container partitioned
otherwise, an item that does not decode, an account that goes away and comes back, a fork.

The emulator checks no key and never throttles: those answers come from `CosmosProxy`, in
front of the same emulator (said in each test)."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.cosmos import ContainerProxy, CosmosClient, PartitionKey
from azure.cosmos.exceptions import CosmosHttpResponseError

from kernel.plugin import ConfigurationError, ConnectionFailed, KernelError
from kernel.testing.transport import wait_for
from kernel_cosmosdb.store import CosmosDBStore, doc_id
from kernel_cosmosdb.testing import KEY, CosmosProxy, CosmosServer

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


@pytest.fixture
def store(cosmos_url: str) -> Iterator[CosmosDBStore]:
    s = CosmosDBStore(cosmos_url, {})
    yield s
    s.close()


def raw(store: CosmosDBStore) -> ContainerProxy:
    """The store's container through a client of the test's own (the store makes it first)."""
    store.get("warm-up")
    s = store.settings
    client = CosmosClient(s.endpoint, credential=s.key, connection_verify=s.verify_tls,
                          enable_endpoint_discovery=False)
    return client.get_database_client(s.database).get_container_client(s.container)


def test_records_are_celerys_items(store: CosmosDBStore) -> None:
    key = f"celery-task-meta-{uuid.uuid4()}"
    store.set([(key, b'{"status": "SUCCESS", "result": 5}')], None)
    container = raw(store)
    item = container.read_item(key, partition_key=key)
    assert item["id"] == key and item["value"] == '{"status": "SUCCESS", "result": 5}', \
        "Celery's backend reads {'id': key, 'value': record}, partition key = the id"
    assert "ttl" not in item and "kernel_expires" not in item
    props = container.read()
    assert props["partitionKey"]["paths"] == ["/id"] and props["defaultTtl"] == -1, \
        "created as Celery's (partitioned by /id), with TTL on for items that carry one"
    store.set([(key + "-bin", b"\x80\x04K\x01.")], None)
    assert store.get(key + "-bin") == b"\x80\x04K\x01.", "bytes that are not text survive"


def test_an_expiry_is_cosmos_ttl_and_a_stored_deadline(store: CosmosDBStore) -> None:
    key = f"celery-task-meta-{uuid.uuid4()}"
    store.set([(key, b"v")], 60)
    item = raw(store).read_item(key, partition_key=key)
    assert item["ttl"] == 61, "whole seconds, one more than asked: _ts is rounded down"
    assert item["kernel_expires"] == pytest.approx(time.time() + 60, abs=5)


def test_ids_cosmos_refuses_are_escaped() -> None:
    assert doc_id("celery-task-meta-1") == "celery-task-meta-1"
    for key in ("a/b", "a\\b", "q?", "h#", "trail ", ".", "..", "k" * 256, "kernel~x"):
        escaped = doc_id(key)
        assert escaped.startswith("kernel~") and len(escaped) <= 255 and escaped != key
    assert doc_id("a/b") != doc_id("a\\b")


def test_the_emulator_answers_a_missing_read_with_500_and_the_store_reads_none(
        store: CosmosDBStore) -> None:
    store.set([("present", b"x")], None)
    with pytest.raises(CosmosHttpResponseError) as info:
        raw(store).read_item("absent", partition_key="absent")
    assert info.value.status_code in (404, 500), info.value
    # On the emulator it is 500 (a fidelity gap); the store asks by query, then reads None.
    assert store.get("absent") is None
    assert store.get("present") == b"x"


def test_the_emulator_refuses_a_stale_etag(store: CosmosDBStore) -> None:
    """What the counter stands on: a replace sent with an old ETag is refused with 412."""
    container = raw(store)
    first = container.upsert_item({"id": "etag", "value": "1"})
    container.replace_item("etag", {"id": "etag", "value": "2"}, etag=first["_etag"],
                           match_condition=MatchConditions.IfNotModified)
    with pytest.raises(CosmosHttpResponseError) as info:
        container.replace_item("etag", {"id": "etag", "value": "3"}, etag=first["_etag"],
                               match_condition=MatchConditions.IfNotModified)
    assert info.value.status_code == 412
    assert store.incr("etag", 5) == 7


def test_the_emulator_never_expires_and_reads_and_cleanup_do(store: CosmosDBStore) -> None:
    store.set([("gone-1", b"a"), ("gone-2", b"b")], 0.2)
    store.set([("kept", b"c")], None)
    store.set([("later", b"d")], 3600)
    time.sleep(2.5)  # past the items' ttl of 2 s: a real account would have dropped them
    container = raw(store)
    left = {i["id"] for i in container.query_items("SELECT c.id FROM c",
                                                   enable_cross_partition_query=True)}
    assert {"gone-1", "gone-2"} <= left, "the emulator has begun to honour ttl: update docs"
    assert store.get("gone-1") is None, "an item past its deadline reads as absent"
    assert store.cleanup() == {"records": 2}
    assert store.get("kept") == b"c" and store.get("later") == b"d"
    assert store.cleanup() == {"records": 0}


def test_an_item_that_does_not_decode_is_one_sentence(store: CosmosDBStore) -> None:
    raw(store).upsert_item({"id": "odd", "value": 5})
    with pytest.raises(KernelError, match=r"the item 'odd' of Cosmos DB .*container "
                                          r".*/celerycol.* holds no text 'value' .*delete it"):
        store.get("odd")


def test_a_missing_database_and_container_are_created(cosmos_url: str) -> None:
    store = CosmosDBStore(cosmos_url, {"cosmosdbsql_collection_name": "fresh"})
    try:
        store.set([("k", b"v")], None)
        assert raw(store).read()["id"] == "fresh"
    finally:
        store.close()


def test_a_container_partitioned_otherwise_is_refused(cosmos_url: str, database: str) -> None:
    store = CosmosDBStore(cosmos_url, {"cosmosdbsql_collection_name": "other"})
    s = store.settings
    client = CosmosClient(s.endpoint, credential=s.key, connection_verify=False,
                          enable_endpoint_discovery=False)
    client.create_database_if_not_exists(database).create_container(
        "other", partition_key=PartitionKey(path="/pk"))
    with pytest.raises(ConfigurationError, match=r"partitioned by \['/pk'\], not /id"):
        store.get("k")


def test_throttling_is_retried_after_what_the_service_asks(proxy: CosmosProxy,
                                                          proxy_url: str) -> None:
    """429 and 503 come from the proxy (the emulator never throttles)."""
    store = CosmosDBStore(proxy_url, {})
    try:
        store.set([("warm", b"up")], None)
        proxy.fail_next(429, count=2, headers={"x-ms-retry-after-ms": "300"})
        proxy.fail_next(503)
        started = time.monotonic()
        store.set([("k", b"v")], None)
        assert time.monotonic() - started >= 0.6, "x-ms-retry-after-ms must be honoured"
        assert store.get("k") == b"v"
    finally:
        store.close()


def test_throttling_past_the_retry_budget_is_one_sentence(proxy: CosmosProxy,
                                                          proxy_url: str) -> None:
    store = CosmosDBStore(proxy_url, {"cosmosdbsql_max_retry_attempts": 2})
    try:
        store.set([("warm", b"up")], None)
        proxy.fail_next(429, count=3)
        with pytest.raises(ConnectionFailed, match="still busy \\(429\\) after 2 retries"):
            store.get("warm")
        assert store.get("warm") == b"up", "served again once the throttling stops"
    finally:
        store.close()


def test_a_refused_key_is_one_sentence(proxy: CosmosProxy, proxy_url: str) -> None:
    """The 401 comes from the proxy: the emulator accepts any key."""
    proxy.fail_next(401, count=20)
    store = CosmosDBStore(proxy_url, {})
    try:
        with pytest.raises(ConfigurationError, match="refused the key \\(401\\)") as info:
            store.get("k")
        assert KEY not in str(info.value)
    finally:
        store.close()


def test_a_refused_creation_is_one_sentence(proxy: CosmosProxy, proxy_url: str) -> None:
    """The 403 comes from the proxy (a key that may read but not create)."""
    proxy.fail_next(403, count=20)
    store = CosmosDBStore(proxy_url, {})
    try:
        with pytest.raises(ConfigurationError, match="refused to create or read the database"):
            store.set([("k", b"v")], None)
    finally:
        store.close()


def test_an_unreachable_account_fails_within_the_connection_timeout(tmp_path: Path) -> None:
    server = CosmosServer(tmp_path)  # never started: nothing listens on its port
    store = CosmosDBStore(server.url(), {"connection_timeout": 1.0})
    started = time.monotonic()
    try:
        with pytest.raises(ConnectionFailed, match="cannot reach Cosmos DB"):
            store.set([("k", b"v")], None)
        assert time.monotonic() - started < 6
    finally:
        store.close()


def test_the_store_serves_again_after_the_emulator_restarts(tmp_path: Path) -> None:
    server = CosmosServer(tmp_path).start()
    store = CosmosDBStore(server.url(), {"connection_timeout": 4})
    try:
        store.set([("k", b"before")], None)
        server.kill()
        server.start()  # in memory: the database and container are gone too
        wait_for(lambda: _stores(store), 20, "writes to the restarted emulator")
        assert store.get("k") == b"after"
        assert store.incr("n") == 1
    finally:
        store.close()
        server.stop()


def _stores(store: CosmosDBStore) -> bool:
    try:
        store.set([("k", b"after")], None)
    except (ConnectionFailed, KernelError):
        return False
    return True


def _child(store: CosmosDBStore, parent_client: int, out: Any) -> None:
    store.set([("child", b"wrote")], None)
    out.send(id(store._client) != parent_client)


def test_a_forked_child_makes_its_own_client(store: CosmosDBStore) -> None:
    store.set([("parent", b"p")], None)
    context = multiprocessing.get_context("fork")
    mine, theirs = context.Pipe()
    child = context.Process(target=_child, args=(store, id(store._client), theirs))
    child.start()
    child.join(30)
    assert child.exitcode == 0 and mine.recv(), "the child must not use the parent's client"
    assert store.get("child") == b"wrote" and store.get("parent") == b"p"


def test_the_environment_is_read_once_as_requests_would(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxies, NO_PROXY and a CA bundle from the environment still apply (read when the client
    is made, not on every request)."""
    from kernel_cosmosdb.settings import CosmosSettings
    from kernel_cosmosdb.store import _environment

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
                 "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/corp-ca.pem")
    cloud = _environment(CosmosSettings.parse("cosmosdbsql://:k@acct.documents.azure.com"))
    assert cloud["proxies"] == {"https": "http://proxy.example:3128"}
    assert cloud["connection_verify"] == "/etc/corp-ca.pem"
    local = _environment(CosmosSettings.parse(
        "cosmosdbsql://:k@127.0.0.1:8081?scheme=https&tls_verify=false"))
    assert local["proxies"] == {} and local["connection_verify"] is False


def test_kernel_results_cleanup_deletes_what_the_emulator_kept(cosmos_url: str,
                                                               tmp_path: Path) -> None:
    (tmp_path / "proj.py").write_text(
        f"from kernel import App\napp = App('proj', broker='memory://', results={cosmos_url!r})\n")
    store = CosmosDBStore(cosmos_url, {})
    try:
        store.set([("a", b"1"), ("b", b"2")], 0.1)
        store.set([("c", b"3")], None)
        wait_for(lambda: store.get("a") is None and store.get("b") is None, 5,
                 "the two records past their deadline")
        done = subprocess.run([sys.executable, "-m", "kernel", "results", "cleanup", "-A",
                               "proj"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        assert "2 records" in done.stdout, done.stdout
        assert store.get("c") == b"3"
    finally:
        store.close()
