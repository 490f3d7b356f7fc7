"""What the ArangoDB store adds beyond the suite, against the fake of `kernel_arangodb.testing`
(a thread answering the HTTP API python-arango calls; documents are read back with
python-arango, so the layout tests also run against a real server with
``KERNEL_TEST_ARANGODB_URL``): Celery's documents, the TTL index, and one sentence for each
fault: the server unreachable, credentials refused, a missing collection (created only when
``arangodb_create_collection`` asks) or database, a document that is no record."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from arango.client import ArangoClient
from arango.collection import StandardCollection

from kernel import App
from kernel.plugin import ConfigurationError, ConnectionFailed, DecodeError, KernelError
from kernel.testing.transport import wait_for
from kernel_arangodb.store import EXPIRES_FIELD, ArangoDBStore, document_key
from kernel_arangodb.testing import ArangoFake

CREATE: dict[str, Any] = {"arangodb_create_collection": True}


def collection_of(url: str) -> StandardCollection:
    """python-arango's handle on the collection `url` names, to read what the store wrote."""
    parts = urlsplit(url)
    database, collection = parts.path.strip("/").split("/")
    db = ArangoClient(hosts=f"http://{parts.hostname}:{parts.port}").db(
        database, username=unquote(parts.username or "root"),
        password=unquote(parts.password or ""))
    return db.collection(collection)


def raw(url: str, key: str) -> dict[str, Any]:
    found = collection_of(url).get(key)
    assert isinstance(found, dict), f"no document {key!r}"
    return found


def one_sentence(text: str) -> None:
    assert "\n" not in text and "Traceback" not in text, text


def test_records_are_celerys_documents(arangodb_url: str) -> None:
    """Celery's backend writes ``UPSERT {_key: key} INSERT {_key: key, task: value}`` and reads
    ``DOCUMENT(collection, key).task``: the record's text in ``task``."""
    app = App("layout", broker="memory://", results=arangodb_url, config=CREATE)
    try:
        task_id = str(uuid.uuid4())
        app.backend.store_result(task_id, "SUCCESS", 42)
        doc = raw(arangodb_url, f"celery-task-meta-{task_id}")
        assert doc["_key"] == f"celery-task-meta-{task_id}"
        record = json.loads(doc["task"])
        assert record["status"] == "SUCCESS" and record["result"] == 42
        assert EXPIRES_FIELD in doc, "result_expires (1 day by default) is kept beside it"
        other = str(uuid.uuid4())
        collection_of(arangodb_url).insert({  # what Celery's worker leaves
            "_key": f"celery-task-meta-{other}", "task": json.dumps(
                {"status": "SUCCESS", "result": [1, 2], "traceback": None, "children": [],
                 "date_done": "2026-12-08T03:00:00", "task_id": other})})
        assert app.AsyncResult(other).get(timeout=5) == [1, 2]
    finally:
        app.close()


def test_bytes_that_are_not_text_and_awkward_keys(arangodb_url: str) -> None:
    store = ArangoDBStore(arangodb_url, CREATE)
    try:
        store.set([("pickled", b"\x80\x04K\x01."), ("a/b c", b"v")], None)
        assert raw(arangodb_url, "pickled")["kernel_base64"] is True
        assert raw(arangodb_url, document_key("a/b c"))["task"] == "v"
        assert store.get("pickled") == b"\x80\x04K\x01." and store.get("a/b c") == b"v"
    finally:
        store.close()


def test_the_ttl_index_removes_what_expired(only_fake: ArangoFake, arangodb_url: str) -> None:
    """The fake sweeps every 0.2 s here (ArangoDB's --ttl.frequency, 30 s by default)."""
    store = ArangoDBStore(arangodb_url, CREATE)
    try:
        store.set([("short", b"a")], 0.2)
        store.set([("kept", b"b")], None)
        database, collection = urlsplit(arangodb_url).path.strip("/").split("/")
        assert only_fake.ttl_index(database, collection) == (EXPIRES_FIELD, 0.0)
        wait_for(lambda: "short" not in only_fake.documents(database, collection), 5,
                 "the TTL index to remove the expired document")
        assert store.get("kept") == b"b"
        assert store.cleanup() == {"task": 0, "group": 0, "other": 0}, \
            "nothing for the cleanup: the index expires"
    finally:
        store.close()


def test_reads_ignore_what_expired_before_the_index_removes_it(arangodb_url: str) -> None:
    store = ArangoDBStore(arangodb_url, CREATE)
    try:
        store.set([("k", b"v")], 0.1)
        time.sleep(0.15)  # past the deadline; the sweep may not have run yet
        assert store.get("k") is None
    finally:
        store.close()


def test_a_missing_collection_is_created_only_when_the_setting_asks(
        arangodb_url: str) -> None:
    refusing = ArangoDBStore(arangodb_url, {})
    with pytest.raises(ConfigurationError, match=r"the ArangoDB collection 'results_\w+' of "
                       r"the database 'celery' at http://127\.0\.0\.1:\d+ does not exist; "
                       r"create it, set arangodb_create_collection = True") as info:
        refusing.set([("k", b"v")], None)
    one_sentence(str(info.value))
    creating = ArangoDBStore(arangodb_url, CREATE)
    creating.set([("k", b"v")], None)
    assert refusing.get("k") == b"v", "once it exists, a store without the setting uses it"


def test_a_missing_database_is_one_sentence(only_fake: ArangoFake) -> None:
    store = ArangoDBStore(only_fake.url("nowhere", "results"), CREATE)
    with pytest.raises(ConfigurationError, match="the database 'nowhere' does not exist at "
                       r"http://127\.0\.0\.1:\d+; create it") as info:
        store.get("k")
    one_sentence(str(info.value))


def test_refused_credentials_are_one_sentence(only_fake: ArangoFake) -> None:
    store = ArangoDBStore(only_fake.url("celery", "results", password="wrong-one"), CREATE)
    with pytest.raises(ConfigurationError, match=r"refused the credentials to read 'k' \(401 "
                       r"not authorized to execute this request\); check the user and "
                       r"password") as info:
        store.get("k")
    one_sentence(str(info.value))
    assert "wrong-one" not in str(info.value)


def test_an_unreachable_server_and_its_return(only_fake: ArangoFake) -> None:
    server = ArangoFake().start()
    store = ArangoDBStore(server.url("celery", "back"), {**CREATE, "connection_timeout": 1})
    try:
        store.set([("k", b"before")], None)
        server.stop()
        started = time.monotonic()
        with pytest.raises(ConnectionFailed, match=r"cannot read 'k' in the ArangoDB "
                           r"collection 'back' .* within 1 s .*check the service is up") as info:
            store.get("k")
        assert time.monotonic() - started < 3
        one_sentence(str(info.value))
        with pytest.raises(ConnectionFailed):
            store.incr("n")  # never reached the server: tried again until the timeout
        server.start()
        assert store.get("k") == b"before"
        assert store.incr("n") == 1
    finally:
        store.close()
        server.stop()


def test_a_document_that_is_no_record(arangodb_url: str) -> None:
    store = ArangoDBStore(arangodb_url, CREATE)
    try:
        store.set([("warm", b"up")], None)
        collection_of(arangodb_url).insert({"_key": "odd", "task": {"not": "text"}})
        with pytest.raises(KernelError, match=r"holds no text 'task' \(dict\).*delete it") \
                as info:
            store.get("odd")
        one_sentence(str(info.value))
    finally:
        store.close()
    app = App("decode", broker="memory://", results=arangodb_url)
    try:
        task_id = uuid.uuid4().hex
        collection_of(arangodb_url).insert({"_key": f"celery-task-meta-{task_id}",
                                            "task": "{not json"})
        with pytest.raises(DecodeError, match=f"the result of task {task_id} .* does not "
                           "decode with the result serializer 'json'") as decoding:
            app.AsyncResult(task_id).get(timeout=5)
        one_sentence(str(decoding.value))
    finally:
        app.close()
