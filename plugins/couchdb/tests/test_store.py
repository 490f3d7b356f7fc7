"""What the CouchDB store adds beyond the suite: Celery's documents, expiry by a stored deadline
with a cleanup for what expired, and service again after the server restarts under it."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx

from kernel.testing.transport import wait_for
from kernel_couchdb.store import CouchDBStore, doc_id
from kernel_couchdb.testing import PouchServer


def http(url: str) -> str:
    return url.replace("couchdb://", "http://")


def test_records_are_celerys_documents(couchdb_url: str) -> None:
    key = f"celery-task-meta-{uuid.uuid4()}"
    store = CouchDBStore(couchdb_url, {})
    try:
        store.set([(key, b'{"status": "SUCCESS", "result": 5}')], None)
        doc = httpx.get(f"{http(couchdb_url)}/{key}").json()
        assert doc["_id"] == key and doc["value"] == '{"status": "SUCCESS", "result": 5}', \
            "Celery's backend reads {'_id': key, 'value': record}"
        store.set([(key + "-bin", b"\x80\x04K\x01.")], None)
        assert store.get(key + "-bin") == b"\x80\x04K\x01.", "bytes that are not text survive"
    finally:
        store.close()


def test_reserved_ids_are_escaped() -> None:
    assert doc_id("celery-task-meta-1") == "celery-task-meta-1"
    assert doc_id("_design") == "kernel~_design"
    assert doc_id("kernel~x") == "kernel~kernel~x"


def test_cleanup_deletes_what_expired_and_only_that(couchdb_url: str) -> None:
    store = CouchDBStore(couchdb_url, {})
    try:
        store.set([("gone-1", b"a"), ("gone-2", b"b")], 0.2)
        store.set([("kept", b"c")], None)
        store.set([("later", b"d")], 3600)
        time.sleep(0.3)
        assert store.cleanup() == {"records": 2}
        assert store.get("kept") == b"c" and store.get("later") == b"d"
        assert httpx.get(f"{http(couchdb_url)}/gone-1").status_code == 404
        assert store.cleanup() == {"records": 0}
    finally:
        store.close()


def test_the_store_serves_again_after_the_server_restarts(tmp_path: Path) -> None:
    server = PouchServer(tmp_path).start()
    store = CouchDBStore(server.url("restarted"), {"connection_timeout": 4})
    try:
        store.set([("k", b"before")], None)
        server.stop()
        server.start()  # in memory: the database is gone too
        wait_for(lambda: _stores(store), 20, "writes to the restarted server")
        assert store.get("k") == b"after"
    finally:
        store.close()
        server.stop()


def _stores(store: CouchDBStore) -> bool:
    try:
        store.set([("k", b"after")], None)
    except Exception:  # noqa: BLE001 - not yet
        return False
    return True
