"""One negotiation, every codec: a worker decodes what ``accept_content`` (serializers) and
``accept_compression`` (compressors) allow, and refuses anything else before decoding it: the
message goes to the dead-letter queue, the reason is logged and is the task's REJECTED result,
and the worker serves on. On SQLite (a real file, real worker threads); the refused bodies are
what Celery's producers write for each content type and compression."""

from __future__ import annotations

import bz2
import logging
import lzma
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import brotli
import pytest

if sys.version_info >= (3, 14):  # the zstd kombu uses: the standard library's, or its backport
    from compression import zstd
else:
    from backports import zstd

from kernel import App
from kernel.interfaces import Outgoing
from kernel.message import Envelope
from kernel.testing.transport import wait_for
from kernel.testing.workers import running_worker

JSON_BODY = b'[[2, 3], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]'
#: content type → the body of add(2, 3) as Celery writes it there.
SERIALIZED = {
    "application/x-python-serialize":
        b"\x80\x04\x95\x13\x00\x00\x00\x00\x00\x00\x00]\x94(K\x02K\x03\x86\x94}\x94}\x94e.",
    "application/x-msgpack": b"\x93\x92\x02\x03\x80\x80",
    "application/x-yaml": b"- - 2\n  - 3\n- {}\n- {}\n",
}
#: compression header → what kombu compresses with under it.
COMPRESSIONS: dict[str, Callable[[bytes], bytes]] = {
    "application/x-gzip": zlib.compress, "application/x-bz2": bz2.compress,
    "application/x-lzma": lzma.compress, "application/zstd": zstd.compress,
    "application/x-brotli": brotli.compress}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    app = App("refuse", broker=url, results=url,
              config={"task_default_queue": "q", "accept_compression": ["zlib"]})

    @app.task(name="add")
    def add(x: int, y: int) -> int:
        return x + y

    yield app
    app.close()


def envelope(task_id: str, body: bytes, content_type: str = "application/json",
             compression: str | None = None) -> Envelope:
    headers: dict[str, object] = {"lang": "py", "task": "add", "id": task_id}
    if compression:
        headers["compression"] = compression
    return Envelope(body, headers, {"correlation_id": task_id}, content_type,
                    "binary" if compression else "utf-8")


def refused_and_serving_on(app: App, refused: Envelope, reason: str,
                           caplog: pytest.LogCaptureFixture) -> None:
    accepted = envelope("fine", zlib.compress(JSON_BODY),
                        compression="application/x-gzip")
    app.transport.publish([Outgoing("q", refused), Outgoing("q", accepted)])
    with caplog.at_level(logging.INFO), running_worker(app, concurrency=2) as worker:
        assert app.AsyncResult("fine").get(timeout=10) == 5, "the accepted one beside it runs"
        [dead] = wait_for(lambda: app.transport.dead_letters("q"), 10, "the dead letter")
        assert dead.envelope.headers["id"] == refused.headers["id"]
        assert reason in dead.extra["reason"], dead.extra["reason"]
        result = app.AsyncResult(refused.headers["id"])
        wait_for(lambda: result.state == "REJECTED", 10, "the refused task REJECTED")
        assert reason in str(result.result)
        assert app.tasks["add"].delay(1, 1).get(timeout=10) == 2, "the worker serves on"
        assert worker.consumer is not None and worker.consumer.alive()
    assert reason in caplog.text, "the reason is in the worker's log"


@pytest.mark.parametrize("content_type", SERIALIZED)
def test_a_serializer_outside_accept_content_is_refused_and_dead_lettered(
        app: App, content_type: str, caplog: pytest.LogCaptureFixture) -> None:
    refused_and_serving_on(app, envelope("refused", SERIALIZED[content_type], content_type),
                           f"refusing content type {content_type!r}", caplog)


@pytest.mark.parametrize("header", list(COMPRESSIONS)[1:])
def test_a_compression_outside_accept_compression_is_refused_and_dead_lettered(
        app: App, header: str, caplog: pytest.LogCaptureFixture) -> None:
    body = COMPRESSIONS[header](JSON_BODY)
    refused_and_serving_on(app, envelope("refused", body, compression=header),
                           f"refusing compression {header!r}", caplog)


def test_zlib_outside_accept_compression_is_refused_too(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'z.db'}"
    app = App("refuse", broker=url, results=url,
              config={"task_default_queue": "q", "accept_compression": ["zstd"]})
    app.task(name="add")(lambda x, y: x + y)
    try:
        app.transport.publish([Outgoing("q", envelope(
            "refused", zlib.compress(JSON_BODY),
            compression="application/x-gzip"))])
        with caplog.at_level(logging.INFO), running_worker(app, concurrency=1) as worker:
            [dead] = wait_for(lambda: app.transport.dead_letters("q"), 10, "the dead letter")
            assert "refusing compression 'application/x-gzip'" in dead.extra["reason"]
            assert worker.consumer is not None and worker.consumer.alive()
        assert "refusing compression 'application/x-gzip'" in caplog.text
    finally:
        app.close()


def test_an_unknown_compression_is_refused_with_its_reason(
        app: App, caplog: pytest.LogCaptureFixture) -> None:
    refused_and_serving_on(app, envelope("refused", b"\xff\x06\x00\x00sNaPpY",
                                         compression="application/x-snappy"),
                           "no compressor installed for compression 'application/x-snappy'",
                           caplog)
