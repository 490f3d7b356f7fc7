"""A kernel worker that accepts YAML runs YAML tasks and dead-letters, with the reason logged, a
body whose tag would construct a Python object, serving on. On SQLite (a real file, real worker
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

#: what a hostile producer would write: add(...) whose args build os.system("...").
HOSTILE = b"- - !!python/object/apply:os.system [echo owned]\n  - 3\n- {}\n- {}\n"


def test_an_object_building_tag_is_dead_lettered_with_the_reason(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    app = App("yaml-worker", broker=url, results=url,
              config={"task_default_queue": "q", "task_serializer": "yaml",
                      "result_serializer": "yaml", "accept_content": ["yaml"]})
    app.task(name="add")(lambda x, y: x + y)
    try:
        app.transport.publish([Outgoing("q", Envelope(
            HOSTILE, {"lang": "py", "task": "add", "id": "hostile"},
            {"correlation_id": "hostile"}, "application/x-yaml", "utf-8"))])
        with caplog.at_level(logging.INFO), running_worker(app, concurrency=2) as worker:
            assert app.tasks["add"].delay([1], [2]).get(timeout=10) == [1, 2]
            [dead] = wait_for(lambda: app.transport.dead_letters("q"), 10, "the dead letter")
            assert "safe loader only" in dead.extra["reason"], dead.extra["reason"]
            assert app.tasks["add"].delay(2, 2).get(timeout=10) == 4, "the worker serves on"
            assert worker.consumer is not None and worker.consumer.alive()
        assert "python/object/apply:os.system" in caplog.text
    finally:
        app.close()
