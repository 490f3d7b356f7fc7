"""A client during a Redis outage: a send gives up within ``broker_connection_timeout`` with
`ConnectionFailed`, and what raised was not delivered; a send during a short blip retries and
is delivered once. Against private redis-server processes (stopped and started here) and a
port that never answers (a hung server, or one cut off by the network)."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest

from kernel import App
from kernel.plugin import ConnectionFailed
from kernel.testing.servers import silent_server
from kernel_redis.testing import RedisServer

TIMEOUT = 1.0
#: what the clock may add to the promise on a loaded machine (scheduling, one round trip).
SLACK = 0.5


def client(url: str, timeout: float = TIMEOUT) -> App:
    app = App("outage", broker=url, config={"broker_connection_timeout": timeout,
                                             "result_backend": None})
    app.task(name="outage.add")(lambda x, y: x + y)
    return app


def test_a_send_to_a_stopped_redis_raises_within_the_timeout_and_is_not_delivered(
        tmp_path: Path) -> None:
    server = RedisServer(tmp_path, persist=True).start()
    app, queue = client(server.url), f"q-{uuid.uuid4().hex}"
    try:
        first = app.send_task("outage.add", (1, 2), queue=queue)
        server.stop()
        began = time.monotonic()
        with pytest.raises(ConnectionFailed, match="broker_connection_timeout"):
            app.send_task("outage.add", (3, 4), queue=queue)
        assert time.monotonic() - began <= TIMEOUT + SLACK
        server = RedisServer(tmp_path, persist=True, port=server.port).start()
        [held] = app.transport.fetch([queue], 10, 0.5)
        assert held.envelope.headers["id"] == first.id, "the send that raised is not there"
    finally:
        app.close()
        server.kill()


def test_a_send_to_a_server_that_never_answers_raises_within_the_timeout() -> None:
    with silent_server() as port:
        app = client(f"redis://127.0.0.1:{port}/0")
        began = time.monotonic()
        with pytest.raises(ConnectionFailed, match=f"127.0.0.1:{port}"):
            app.send_task("outage.add", (1, 2), queue="never")
        assert time.monotonic() - began <= TIMEOUT + SLACK
        app.close()


def test_a_send_during_a_restart_waits_for_the_server_and_is_delivered_once(
        tmp_path: Path) -> None:
    server = RedisServer(tmp_path, persist=True).start()
    app, queue = client(server.url, timeout=10.0), f"q-{uuid.uuid4().hex}"
    try:
        app.send_task("outage.add", (0, 0), queue=queue)  # connected before the outage
        server.stop()
        server = RedisServer(tmp_path, persist=True, port=server.port)
        back = threading.Thread(target=server.start)
        back.start()
        sent = app.send_task("outage.add", (1, 2), queue=queue)
        back.join()
        held = app.transport.fetch([queue], 10, 0.5)
        assert sorted(h.envelope.headers["id"] for h in held).count(sent.id) == 1
        assert len(held) == 2
    finally:
        app.close()
        server.kill()


def test_a_send_whose_result_store_never_answers_raises_within_the_timeout(
        redis_url: str) -> None:
    with silent_server() as port:
        app = App("outage", broker=redis_url, config={
            "broker_connection_timeout": TIMEOUT, "result_backend": f"redis://127.0.0.1:{port}/0"})
        queue = f"q-{uuid.uuid4().hex}"
        began = time.monotonic()
        with pytest.raises(ConnectionFailed, match="broker_connection_timeout"):
            app.send_task("outage.add", (1, 2), queue=queue)  # its PENDING record comes first
        assert time.monotonic() - began <= TIMEOUT + SLACK
        assert app.transport.fetch([queue], 10, 0) == [], "a send that raised is not delivered"
        app.close()
