"""What the Couchbase store adds beyond the suite, through the real SDK 4 with its C++ core
replaced by the fake of `kernel_couchbase.testing` (the layout tests read documents back with
the SDK, so they also run against a real cluster with ``KERNEL_TEST_COUCHBASE_URL``): Celery's
documents, whole-second expiry, long keys, and one sentence for each fault: the cluster
unreachable, credentials refused, a missing bucket, no credentials at all, a document that is
no record."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

import pytest
from couchbase.auth import PasswordAuthenticator
from couchbase.cluster import Cluster
from couchbase.collection import Collection
from couchbase.constants import FMT_BYTES, FMT_JSON
from couchbase.options import ClusterOptions

from kernel import App
from kernel.plugin import ConfigurationError, ConnectionFailed, DecodeError, KernelError
from kernel_couchbase.store import CouchbaseStore, document_key
from kernel_couchbase.testing import CouchbaseFake


@pytest.fixture
def sdk(couchbase_url: str) -> Iterator[Collection]:
    """The SDK's own handle on the bucket, to read and write documents as any client would."""
    parts = urlsplit(couchbase_url)
    cluster = Cluster(f"couchbase://{parts.hostname}", ClusterOptions(PasswordAuthenticator(
        unquote(parts.username or ""), unquote(parts.password or ""))))
    yield cluster.bucket(parts.path.strip("/")).default_collection()
    cluster.close()


def one_sentence(text: str) -> None:
    assert "\n" not in text and "Traceback" not in text, text


def test_records_are_json_strings_as_celerys_backend_upserts_them(
        couchbase_url: str, sdk: Collection) -> None:
    app = App("layout", broker="memory://", results=couchbase_url)
    try:
        task_id = str(uuid.uuid4())
        app.backend.store_result(task_id, "SUCCESS", 42)
        found = sdk.get(f"celery-task-meta-{task_id}")  # the SDK's default transcoder
        assert found.flags == FMT_JSON and isinstance(found.value, str), \
            "Celery upserts the record's text: a JSON string, flagged JSON"
        record = json.loads(found.value)
        assert record["status"] == "SUCCESS" and record["result"] == 42
        other = str(uuid.uuid4())
        sdk.upsert(f"celery-task-meta-{other}", json.dumps(  # as Celery's backend stores it
            {"status": "SUCCESS", "result": [1, 2], "traceback": None, "children": [],
             "date_done": "2026-12-08T03:00:00", "task_id": other}))
        assert app.AsyncResult(other).get(timeout=5) == [1, 2]
    finally:
        app.close()


def test_bytes_that_are_not_text_are_binary_and_long_keys_are_hashed(
        couchbase_url: str, only_fake: CouchbaseFake) -> None:
    store = CouchbaseStore(couchbase_url, {})
    try:
        key, long = f"pickled-{uuid.uuid4().hex}", "k" * 300
        store.set([(key, b"\x80\x04K\x01."), (long, b"v")], None)
        items = only_fake.items("results")
        assert items[key].flags == FMT_BYTES and items[key].value == b"\x80\x04K\x01."
        assert document_key(long) in items and store.get(long) == b"v"
        assert store.get(key) == b"\x80\x04K\x01."
    finally:
        store.close()


def test_expiry_is_whole_seconds_and_never_early(couchbase_url: str,
                                                 only_fake: CouchbaseFake) -> None:
    store = CouchbaseStore(couchbase_url, {})
    try:
        key = f"short-{uuid.uuid4().hex}"
        due = time.time() + 0.2
        store.set([(key, b"v")], 0.2)
        expires_at = only_fake.items("results")[key].expires_at
        assert expires_at is not None and due <= expires_at <= due + 1.5, \
            "0.2 s is sent as 1 s: the SDK would drop the fraction, and 0 means never"
        assert store.cleanup() == {"task": 0, "group": 0, "other": 0}, "the server expires"
    finally:
        store.close()


def test_an_unreachable_cluster_and_its_return(couchbase_url: str,
                                               only_fake: CouchbaseFake) -> None:
    store = CouchbaseStore(couchbase_url, {"connection_timeout": 1})
    try:
        store.set([("k", b"before")], None)
        only_fake.stop()
        started = time.monotonic()
        with pytest.raises(ConnectionFailed, match=r"cannot read 'k' in the Couchbase bucket "
                           r"'results' at couchbase://127\.0\.0\.1 within 1 s "
                           r"\(UnAmbiguousTimeoutException.*check the service is up") as info:
            store.get("k")
        assert time.monotonic() - started < 3
        one_sentence(str(info.value))
        only_fake.start()
        assert store.get("k") == b"before"
        fresh = CouchbaseStore(couchbase_url, {"connection_timeout": 1})
        only_fake.stop()
        with pytest.raises(ConnectionFailed, match="cannot connect"):
            fresh.get("k")  # connecting times out too
    finally:
        only_fake.start()
        store.close()


def test_refused_credentials_are_one_sentence(only_fake: CouchbaseFake) -> None:
    store = CouchbaseStore(only_fake.url("results", password="wrong-one"), {})
    with pytest.raises(ConfigurationError, match=r"the Couchbase cluster at "
                       r"couchbase://127\.0\.0\.1 refused the credentials to connect; check "
                       r"the user and password") as info:
        store.get("k")
    one_sentence(str(info.value))
    assert "wrong-one" not in str(info.value)


def test_a_missing_bucket_is_one_sentence(only_fake: CouchbaseFake) -> None:
    store = CouchbaseStore(only_fake.url("nowhere"), {})
    with pytest.raises(ConfigurationError, match="the Couchbase bucket 'nowhere' at .* does "
                       "not exist; create it") as info:
        store.set([("k", b"v")], None)
    one_sentence(str(info.value))


def test_no_credentials_is_one_sentence() -> None:
    with pytest.raises(ConfigurationError, match="needs a user and password"):
        CouchbaseStore("couchbase://127.0.0.1/results", {})


def test_a_document_that_is_no_record(couchbase_url: str, sdk: Collection) -> None:
    store = CouchbaseStore(couchbase_url, {})
    key = f"odd-{uuid.uuid4().hex}"
    try:
        sdk.upsert(key, {"not": "a record"})
        with pytest.raises(KernelError, match=f"the Couchbase document '{key}' .* holds JSON "
                           "that is not a string .*delete it") as info:
            store.get(key)
        one_sentence(str(info.value))
    finally:
        store.close()
    app = App("decode", broker="memory://", results=couchbase_url)
    try:
        task_id = uuid.uuid4().hex
        sdk.upsert(f"celery-task-meta-{task_id}", "{not json")
        with pytest.raises(DecodeError, match=f"the result of task {task_id} .* does not "
                           "decode with the result serializer 'json'") as decoding:
            app.AsyncResult(task_id).get(timeout=5)
        one_sentence(str(decoding.value))
    finally:
        app.close()
