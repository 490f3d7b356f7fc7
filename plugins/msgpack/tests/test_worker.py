"""A kernel worker that accepts msgpack runs msgpack tasks, and dead-letters, with the reason
logged, a msgpack body that is not one value, serving on. On SQLite (a real file, real worker
threads)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from kernel import App
from kernel.interfaces import Outgoing
from kernel.plugin import Envelope
from kernel.testing.transport import wait_for
from kernel.testing.workers import running_worker

#: add(2, 3)'s body, and a byte after it: a broken producer's.
HOSTILE = b"\x93\x92\x02\x03\x80\x80\xc0"


def test_a_body_that_is_not_one_value_is_dead_lettered_with_the_reason(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    app = App("msgpack-worker", broker=url, results=url,
              config={"task_default_queue": "q", "task_serializer": "msgpack",
                      "result_serializer": "msgpack", "accept_content": ["msgpack"]})
    app.task(name="add")(lambda x, y: x + y)
    try:
        app.transport.publish([Outgoing("q", Envelope(
            HOSTILE, {"lang": "py", "task": "add", "id": "hostile"},
            {"correlation_id": "hostile"}, "application/x-msgpack", "utf-8"))])
        with caplog.at_level(logging.INFO), running_worker(app, concurrency=2) as worker:
            assert app.tasks["add"].delay([1], [2]).get(timeout=10) == [1, 2]
            [dead] = wait_for(lambda: app.transport.dead_letters("q"), 10, "the dead letter")
            assert "bytes follow the first" in dead.extra["reason"], dead.extra["reason"]
            assert app.tasks["add"].delay(2, 2).get(timeout=10) == 4, "the worker serves on"
            assert worker.consumer is not None and worker.consumer.alive()
        assert "body is not one msgpack value" in caplog.text
    finally:
        app.close()
