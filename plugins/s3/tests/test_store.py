"""What the S3 store does beyond the suite, on moto and s3rver: Celery's object layout, a
missing bucket, refused credentials, throttling, the server going away and coming back, a
record that does not decode, and a client of each process's own."""

from __future__ import annotations

import http.server
import multiprocessing
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kernel import App
from kernel.plugin import ConfigurationError, ConnectionFailed, DecodeError
from kernel_s3.store import S3Store
from kernel_s3.testing import MotoServer, S3rver, S3Server


def one_sentence(text: str) -> None:
    assert "\n" not in text and "Traceback" not in text, text


def test_celerys_layout_the_key_after_the_base_path_holding_the_record(
        moto: S3Server, s3_options: dict[str, Any]) -> None:
    app = App("layout", broker="memory://", results="s3://",
              config={**s3_options, "s3_base_path": "celery/"})
    try:
        task_id = uuid.uuid4().hex
        app.backend.store_result(task_id, "SUCCESS", 42)
        body = moto.client().get_object(Bucket=s3_options["s3_bucket"],
                                        Key=f"celery/celery-task-meta-{task_id}")["Body"].read()
        assert app.backend.decode(body)["result"] == 42, "the object holds the record's bytes"
    finally:
        app.close()


def test_a_missing_bucket_is_named_with_what_to_do(moto: S3Server) -> None:
    store = S3Store("s3://", moto.options(f"missing-{uuid.uuid4().hex[:12]}"))
    with pytest.raises(ConfigurationError, match=r"the S3 bucket 'missing-\w+' at "
                       r"http://127.0.0.1:\d+ does not exist; create it, set "
                       r"s3_create_bucket = True to have kernel create it, or name another with "
                       r"s3_bucket") as info:
        store.set([("k", b"v")], None)
    one_sentence(str(info.value))


def test_s3_create_bucket_creates_it(moto: S3Server) -> None:
    bucket = f"created-{uuid.uuid4().hex[:12]}"
    store = S3Store("s3://", moto.options(bucket, s3_create_bucket=True))
    store.set([("k", b"v")], None)
    assert store.get("k") == b"v"
    assert bucket in [b["Name"] for b in moto.client().list_buckets()["Buckets"]]


def test_refused_credentials_are_one_sentence(s3rver_server: S3rver,
                                              new_bucket: Callable[[S3Server], str]) -> None:
    bucket = new_bucket(s3rver_server)
    store = S3Store("s3://", {**s3rver_server.options(bucket),
                              "s3_access_key_id": "WRONGKEY", "s3_secret_access_key": "nope0"})
    with pytest.raises(ConfigurationError, match="refused the credentials to read "
                       r"'k' \(InvalidAccessKeyId\); check s3_access_key_id") as info:
        store.get("k")
    one_sentence(str(info.value))
    assert "nope0" not in str(info.value)


@pytest.fixture
def slow_down() -> Iterator[tuple[str, list[float]]]:
    """A loopback HTTP server that answers every request as S3 does when it throttles (503
    SlowDown): nothing runs here that throttles on demand. Yields its endpoint and the times
    of the requests it got."""
    seen: list[float] = []

    class Throttling(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            seen.append(time.monotonic())
            body = (b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
                    b"<Message>Please reduce your request rate.</Message></Error>")
            self.send_response(503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Throttling)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_throttling_is_retried_with_backoff_then_named(
        slow_down: tuple[str, list[float]]) -> None:
    endpoint, seen = slow_down
    store = S3Store("s3://", {"s3_bucket": "b", "s3_endpoint_url": endpoint,
                              "s3_region": "us-east-1", "s3_access_key_id": "k",
                              "s3_secret_access_key": "s", "connection_timeout": 1.0})
    started = time.monotonic()
    with pytest.raises(ConnectionFailed, match=r"within 1 s \(SlowDown from S3\)") as info:
        store.get("k")
    assert time.monotonic() - started < 3, "it must give up within connection_timeout"
    assert len(seen) >= 3, "a throttled request must be sent again"
    gaps = [b - a for a, b in zip(seen, seen[1:], strict=False)]
    assert gaps[-1] > gaps[0], f"the pauses must grow (backoff): {gaps}"
    one_sentence(str(info.value))


@pytest.fixture
def own_moto(tmp_path: Path) -> Iterator[MotoServer]:
    with MotoServer(tmp_path / "moto") as server:
        yield server


@pytest.mark.timeout(90)
def test_the_store_recovers_when_the_server_comes_back(own_moto: MotoServer) -> None:
    # 3 s: moto answers its first S3 request after a start slowly (it loads S3 then)
    store = S3Store("s3://", own_moto.options("recovers", s3_create_bucket=True,
                                              connection_timeout=3.0))
    store.set([("k", b"before")], None)
    own_moto.kill()
    started = time.monotonic()
    with pytest.raises(ConnectionFailed, match="cannot read 'k' in the S3 bucket 'recovers'") \
            as info:
        store.get("k")
    assert time.monotonic() - started < 6, "a call must give up within connection_timeout"
    one_sentence(str(info.value))
    own_moto.start()  # in memory: the bucket is gone too, and s3_create_bucket brings it back
    store.set([("k", b"after")], None)
    assert store.get("k") == b"after"


def test_a_record_that_does_not_decode_names_task_store_and_remedy(
        s3_options: dict[str, Any]) -> None:
    app = App("decode", broker="memory://", results="s3://", config=s3_options)
    try:
        task_id = uuid.uuid4().hex
        app.backend.store.set([(f"celery-task-meta-{task_id}", b"{not json")], None)
        with pytest.raises(DecodeError, match=f"the result of task {task_id} in the S3 bucket "
                           f"'{s3_options['s3_bucket']}' .* does not decode with the result "
                           "serializer 'json'.*forget the result") as info:
            app.AsyncResult(task_id).get(timeout=5)
        one_sentence(str(info.value))
    finally:
        app.close()


def _child_client(store: S3Store, inherited: int, answer: Any) -> None:
    answer.put(id(store.client()) != inherited and store.get("k") == b"v")


def test_a_forked_child_makes_its_own_client(s3_options: dict[str, Any]) -> None:
    store = S3Store("s3://", s3_options)
    store.set([("k", b"v")], None)
    context = multiprocessing.get_context("fork")
    answer = context.Queue()
    child = context.Process(target=_child_client, args=(store, id(store.client()), answer))
    child.start()
    child.join(30)
    assert answer.get(timeout=5) is True, "the child must make a client of its own"
    assert store._pid == os.getpid()


def test_kernel_results_cleanup_deletes_expired_objects_with_boto3s_own_endpoint_setting(
        moto: S3Server, s3_options: dict[str, Any]) -> None:
    bucket = s3_options["s3_bucket"]
    store = S3Store("s3://", s3_options)
    task_id = uuid.uuid4().hex
    store.set([(f"celery-task-meta-{task_id}", b"{}")], 0.1)
    store.set([("celery-task-meta-kept", b"{}")], None)
    deadline = time.monotonic() + 10
    while store.get(f"celery-task-meta-{task_id}") is not None:
        assert time.monotonic() < deadline, "the record never expired"
        time.sleep(0.05)
    # The endpoint and keys as boto3 reads them itself: the same code runs against AWS.
    env = {**os.environ, "KERNEL_BROKER_URL": "memory://", "KERNEL_RESULT_BACKEND":
           f"s3://{bucket}", "AWS_ENDPOINT_URL_S3": moto.endpoint, "AWS_DEFAULT_REGION":
           "us-east-1", "AWS_ACCESS_KEY_ID": moto.access_key,
           "AWS_SECRET_ACCESS_KEY": moto.secret_key}
    done = subprocess.run([sys.executable, "-m", "kernel", "results", "cleanup"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "deleted expired records: 1 task" in done.stdout, done.stdout
    names = [o["Key"] for o in moto.client().list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert names == ["celery-task-meta-kept"], "cleanup must delete only the expired record"
