"""What the Elasticsearch and OpenSearch stores do beyond the suite, on noida-db and
osmem-server (or the services the environment names): Celery's documents, expiry by a stored
deadline with a cleanup for what expired, and the faults: a server that cannot be reached,
refused credentials (a loopback stub answering 401 as the services do: neither server here has
users), an index that is not there, a document that does not decode, the wrong service, and
noida-db stopped and started again under a store."""

from __future__ import annotations

import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kernel import App
from kernel.plugin import ConfigurationError, ConnectionFailed, DecodeError, KernelError
from kernel.testing.servers import free_port
from kernel.testing.transport import wait_for
from kernel_elasticsearch.store import ElasticsearchStore, OpenSearchStore, SearchStore
from kernel_elasticsearch.testing import NoidaServer

KINDS = {"elasticsearch": ElasticsearchStore, "opensearch": OpenSearchStore}


def one_sentence(text: str) -> None:
    assert "\n" not in text and "Traceback" not in text, text


@pytest.fixture(params=sorted(KINDS))
def store(request: pytest.FixtureRequest) -> Iterator[SearchStore]:
    url = request.getfixturevalue(f"{request.param}_url")
    s = KINDS[request.param](url, {})
    yield s
    s.close()


def source(store: SearchStore, key: str) -> dict[str, Any]:
    found: dict[str, Any] = store.flavour.get(store._client(), store.index, key)
    return dict(found["_source"])


def test_records_are_celerys_documents(store: SearchStore) -> None:
    key = f"celery-task-meta-{uuid.uuid4()}"
    store.set([(key, b'{"status": "SUCCESS", "result": 5}')], None)
    doc = source(store, key)
    assert doc["result"] == '{"status": "SUCCESS", "result": 5}', \
        "Celery's backend reads the record's text from 'result'"
    assert set(doc) == {"result", "@timestamp"}, "nothing else without an expiry"
    store.set([("chord-counter", b"\x80\x04K\x01.")], 60)
    own = source(store, "chord-counter")
    assert "result" not in own and own["kernel_base64"] is True, \
        "kernel's own keys keep their bytes apart from Celery's 'result'"
    assert store.get("chord-counter") == b"\x80\x04K\x01."


def test_cleanup_deletes_what_expired_and_only_that(store: SearchStore) -> None:
    store.set([("gone-1", b"a"), ("celery-task-meta-gone-2", b"b")], 0.2)
    store.set([("kept", b"c")], None)
    store.set([("later", b"d")], 3600)
    time.sleep(0.3)  # past the deadline: expiry is a stored time, not a timer to wait on
    assert store.cleanup() == {"records": 2}
    assert store.get("kept") == b"c" and store.get("later") == b"d"
    assert store._read("gone-1") is None, "the expired document itself is gone"
    assert store.cleanup() == {"records": 0}


def test_a_missing_index_reads_as_nothing_and_is_created_by_the_first_write(
        store: SearchStore) -> None:
    assert store.get("k") is None and store.cleanup() == {"records": 0}
    store.delete(["k"])  # forgetting in an index that is not there is a no-op
    assert store.incr("n") == 1, "the server creates the index on the first write"
    assert store.get("n") == b"1"


def test_an_unreachable_server_fails_within_connection_timeout() -> None:
    url = f"elasticsearch://elastic:s3cret@127.0.0.1:{free_port()}/results"
    store = ElasticsearchStore(url, {"connection_timeout": 1.0})
    started = time.monotonic()
    try:
        with pytest.raises(ConnectionFailed, match="cannot reach Elasticsearch at 127.0.0.1") \
                as info:
            store.get("celery-task-meta-x")
        assert time.monotonic() - started < 3, "a call must give up within connection_timeout"
        one_sentence(str(info.value))
        assert "s3cret" not in str(info.value) and "s3cret" not in repr(store)
    finally:
        store.close()


class _Refusing(http.server.BaseHTTPRequestHandler):
    """Answers every request as a service with security on answers a wrong password."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = json.dumps({"error": {"type": "security_exception",
                                     "reason": "unable to authenticate user [elastic]"},
                           "status": 401}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("WWW-Authenticate", 'Basic realm="security"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_PUT = do_POST = do_DELETE = do_GET  # noqa: N815

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def refusing() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_refused_credentials_are_one_sentence(refusing: int, kind: str) -> None:
    store = KINDS[kind](f"{kind}://elastic:wrong@127.0.0.1:{refusing}/results", {})
    try:
        with pytest.raises(ConfigurationError, match="refused .* check the user and password") \
                as info:
            store.set([("k", b"v")], None)
        one_sentence(str(info.value))
        assert "wrong" not in str(info.value)
    finally:
        store.close()


def test_a_document_that_does_not_decode_names_store_and_remedy(store: SearchStore) -> None:
    store.flavour.write(store._client(), store.index, "odd", {"result": 5})
    with pytest.raises(KernelError, match="holds no text 'result' .* delete it") as info:
        store.get("odd")
    one_sentence(str(info.value))


def test_a_record_that_does_not_decode_names_task_store_and_remedy(
        elasticsearch_url: str) -> None:
    app = App("decode", broker="memory://", results=elasticsearch_url)
    try:
        task_id = uuid.uuid4().hex
        app.backend.store.set([(f"celery-task-meta-{task_id}", b"{not json")], None)
        with pytest.raises(DecodeError, match=f"the result of task {task_id} in the "
                           "Elasticsearch index .* does not decode with the result serializer "
                           "'json'.*forget the result") as info:
            app.AsyncResult(task_id).get(timeout=5)
        one_sentence(str(info.value))
    finally:
        app.close()


def test_the_wrong_service_is_named(opensearch_url: str) -> None:
    """elasticsearch-py refuses OpenSearch (as a real one answers it): the sentence says to
    use opensearch://."""
    store = ElasticsearchStore(opensearch_url.replace("opensearch://", "elasticsearch://"), {})
    try:
        with pytest.raises(KernelError, match="opensearch:// for OpenSearch") as info:
            store.set([("k", b"v")], None)
        one_sentence(str(info.value))
    finally:
        store.close()


@pytest.mark.parametrize("url, said", [
    ("elasticsearch://h:port/i", "port"),
    ("elasticsearch://h:9200/index/doctype", "document type"),
    ("elasticsearch://h:9200/Results", "not a valid index name"),
    ("elasticsearch://h:9200/a b", "not a valid index name"),
    ("opensearch://h:9200/i", "not an Elasticsearch URL"),
])
def test_a_bad_url_is_refused_with_a_sentence(url: str, said: str) -> None:
    with pytest.raises(ConfigurationError, match=said):
        ElasticsearchStore(url, {})


def test_celerys_defaults_host_port_and_index() -> None:
    store = ElasticsearchStore("elasticsearch://", {})
    assert (store.where, store.index) == ("localhost:9200", "celery")
    assert ElasticsearchStore("elasticsearch+https://h/x", {})._address == "https://h:9200"


def test_the_store_serves_again_after_noida_restarts(tmp_path: Path) -> None:
    server = NoidaServer(tmp_path).start()
    store = ElasticsearchStore(server.url("restarted"), {"connection_timeout": 2})
    try:
        store.set([("k", b"before")], None)
        server.stop()
        with pytest.raises(ConnectionFailed):
            store.get("k")
        server.start()  # its data on disk: the document is still there
        wait_for(lambda: _reads(store), 20, "reads from the restarted server")
        assert store.get("k") == b"before"
        store.set([("k", b"after")], None)
        assert store.get("k") == b"after"
    finally:
        store.close()
        server.stop()


def _reads(store: SearchStore) -> bool:
    try:
        store.get("k")
    except ConnectionFailed:
        return False
    return True


def test_save_meta_as_text_off_needs_json() -> None:
    app = App("pickled", broker="memory://", results="elasticsearch://127.0.0.1:1/x",
              config={"elasticsearch_save_meta_as_text": False, "result_serializer": "pickle",
                      "accept_content": ["json", "pickle"]})
    try:
        with pytest.raises(ConfigurationError, match="needs result_serializer 'json'"):
            app.backend.store  # noqa: B018 - made on first use
    finally:
        app.close()



def test_kernel_results_cleanup_runs_the_cleanup(store: SearchStore) -> None:
    """What users run daily (or beat's celery.backend_cleanup): the command deletes what
    expired, through the store the URL names."""
    import subprocess
    import sys

    store.set([("gone", b"a")], 0.1)
    store.set([("kept", b"b")], None)
    time.sleep(0.2)  # past the deadline
    done = subprocess.run([sys.executable, "-m", "kernel", "--results", store.url, "results",
                           "cleanup"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "deleted expired records: 1 records" in done.stdout, done.stdout
    assert store._read("gone") is None and store.get("kept") == b"b"
