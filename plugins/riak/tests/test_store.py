"""What the Riak store adds beyond the suite, against the fake of `kernel_riak.testing` (a
thread answering Riak's HTTP API; the objects are read back over that API, so the layout tests
also run against a real node with ``KERNEL_TEST_RIAK_URL``): the layout Celery's Riak backend
kept, expiry by a stored deadline with a cleanup, and one sentence for each fault: the node
unreachable, credentials refused, a setting Riak's HTTP API cannot serve, an object that is no
record."""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import quote

import httpx
import pytest

from kernel import App
from kernel.plugin import ConfigurationError, ConnectionFailed, DecodeError, KernelError
from kernel.testing.transport import wait_for
from kernel_riak.store import EXPIRES_HEADER, RiakStore
from kernel_riak.testing import RiakFake


def http(url: str, key: str) -> str:
    base, bucket = url.replace("riak://", "http://").rsplit("/", 1)
    return f"{base}/buckets/{bucket}/keys/{quote(key, safe='')}"


def one_sentence(text: str) -> None:
    assert "\n" not in text and "Traceback" not in text, text


def test_records_are_json_strings_as_celerys_riak_client_wrote_them(riak_url: str) -> None:
    """Celery's backend stored ``bucket.new(key, data=record)``: the riak client's default
    content type is application/json, so the body is the record as a JSON string."""
    app = App("layout", broker="memory://", results=riak_url)
    try:
        task_id = uuid.uuid4().hex
        app.backend.store_result(task_id, "SUCCESS", 42)
        raw = httpx.get(http(riak_url, f"celery-task-meta-{task_id}"))
        assert raw.headers["content-type"] == "application/json"
        record = json.loads(json.loads(raw.content))
        assert record["status"] == "SUCCESS" and record["result"] == 42
        assert record["task_id"] == task_id
        # What a Celery 4 worker left: read by kernel's AsyncResult.
        other = uuid.uuid4().hex
        celerys = json.dumps({"status": "SUCCESS", "result": [1, 2], "traceback": None,
                              "children": [], "date_done": "2026-12-08T03:00:00",
                              "task_id": other})
        httpx.put(http(riak_url, f"celery-task-meta-{other}"), content=json.dumps(celerys),
                  headers={"Content-Type": "application/json"}).raise_for_status()
        assert app.AsyncResult(other).get(timeout=5) == [1, 2]
    finally:
        app.close()


def test_bytes_that_are_not_text_are_kept_as_they_are(riak_url: str) -> None:
    store = RiakStore(riak_url, {})
    try:
        store.set([("pickled", b"\x80\x04K\x01.")], None)
        raw = httpx.get(http(riak_url, "pickled"))
        assert raw.headers["content-type"] == "application/octet-stream"
        assert raw.content == b"\x80\x04K\x01." == store.get("pickled")
    finally:
        store.close()


def test_expiry_is_a_deadline_beside_the_object_and_cleanup_deletes_by_it(
        riak_url: str) -> None:
    store = RiakStore(riak_url, {})
    try:
        store.set([("gone-1", b"a"), ("gone-2", b"b")], 0.2)
        store.set([("kept", b"c")], None)
        store.set([("later", b"d")], 3600)
        deadline = float(httpx.get(http(riak_url, "later")).headers[EXPIRES_HEADER])
        assert abs(deadline - (time.time() + 3600)) < 60
        wait_for(lambda: store.get("gone-1") is None, 5, "the expired record to read as None")
        assert httpx.get(http(riak_url, "gone-1")).status_code == 200, \
            "Riak keeps it until the cleanup"
        assert store.cleanup() == {"task": 0, "group": 0, "other": 2}
        assert httpx.get(http(riak_url, "gone-1")).status_code == 404
        assert store.get("kept") == b"c" and store.get("later") == b"d"
    finally:
        store.close()


def test_an_unreachable_node_is_one_sentence_within_the_timeout(only_fake: RiakFake) -> None:
    down = RiakFake().start()
    url = down.url("results")
    down.stop()
    store = RiakStore(url, {"connection_timeout": 1})
    started = time.monotonic()
    with pytest.raises(ConnectionFailed, match=r"cannot store 'k' in the Riak bucket 'results' "
                       r"at http://127\.0\.0\.1:\d+ within 1 s .*check the service is up"
                       ) as info:
        store.set([("k", b"v")], None)
    assert time.monotonic() - started < 3
    one_sentence(str(info.value))


def test_the_store_serves_again_when_the_node_comes_back(only_fake: RiakFake) -> None:
    node = RiakFake().start()
    store = RiakStore(node.url("back"), {"connection_timeout": 1})
    try:
        store.set([("k", b"before")], None)
        node.stop()
        with pytest.raises(ConnectionFailed):
            store.get("k")
        node.start()  # the fake keeps its objects, as a restarted node keeps its disk
        assert store.get("k") == b"before"
        store.set([("k", b"after")], None)
        assert store.get("k") == b"after"
    finally:
        store.close()
        node.stop()


def test_refused_credentials_are_one_sentence() -> None:
    with RiakFake(credentials=("celery", "s3cret")) as secured:
        good = RiakStore(secured.url("b", user="celery"), {})
        good.set([("k", b"v")], None)
        assert good.get("k") == b"v"
        bad = RiakStore(secured.url("b").replace("riak://", "riak://celery:wrong@"), {})
        with pytest.raises(ConfigurationError, match=r"refused the credentials to read 'k' "
                           r"\(401\); check the user and password") as info:
            bad.get("k")
        one_sentence(str(info.value))
        assert "wrong" not in str(info.value)


def test_an_object_that_is_no_record(riak_url: str) -> None:
    store = RiakStore(riak_url, {})
    try:
        httpx.put(http(riak_url, "odd"), content=b'{"not": "a string"}',
                  headers={"Content-Type": "application/json"}).raise_for_status()
        with pytest.raises(KernelError, match=r"holds JSON that is not a record .*delete it") \
                as info:
            store.get("odd")
        one_sentence(str(info.value))
    finally:
        store.close()
    app = App("decode", broker="memory://", results=riak_url)
    try:
        task_id = uuid.uuid4().hex
        RiakStore(riak_url, {}).set([(f"celery-task-meta-{task_id}", b"{not json")], None)
        with pytest.raises(DecodeError, match=f"the result of task {task_id} .* does not "
                           "decode with the result serializer 'json'") as decoding:
            app.AsyncResult(task_id).get(timeout=5)
        one_sentence(str(decoding.value))
    finally:
        app.close()
