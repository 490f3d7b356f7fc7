"""Running workers as operators do: real ``kernel worker`` and ``kernel multi`` processes on the
embedded SQLite default and on Redis, with their pid files and log files in tmp_path.

Redis tests use the server on 127.0.0.1:6379 (``KERNEL_TEST_REDIS_URL`` names another) or a
private ``redis-server`` started for the test; off CI they skip without one, under ``CI`` they
fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from kernel import App
from tests.worker.conftest import REDIS_URL, _redis_missing
from kernel.testing.servers import unavailable

#: the task module every worker of these tests runs; `{config}` is the app's settings.
TASKS = """
    import time
    from kernel import App

    app = App("ops", config={config!r})

    @app.task(name="ops.add")
    def add(x, y):
        return x + y

    @app.task(name="ops.sleep")
    def sleep(seconds):
        time.sleep(seconds)
        return seconds

    @app.task(name="ops.talk")
    def talk():
        import logging
        logging.getLogger("ops").warning("talking from the task")
        return "said"
"""


def write_tasks(directory: Path, **config: object) -> str:
    """A task module in `directory` under a unique name (apps are cached by spec): its
    ``module:app`` spec."""
    name = f"ops_{uuid.uuid4().hex[:8]}"
    config.setdefault("task_default_queue", f"q-{uuid.uuid4().hex[:8]}")
    (directory / f"{name}.py").write_text(textwrap.dedent(TASKS.format(config=config)))
    return f"{name}:app"


@pytest.fixture(params=["sqlite", "redis"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kernel.db'}"
    missing = _redis_missing()
    if missing:
        unavailable(missing)
    return REDIS_URL


@pytest.fixture
def redis_url() -> str:
    missing = _redis_missing()
    if missing:
        unavailable(missing)
    return REDIS_URL


def kernel(*args: str, broker: str, cwd: Path, timeout: float = 60,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m kernel ARGS`` in `cwd` (on its Python path), to its end."""
    return subprocess.run(
        [sys.executable, "-m", "kernel", *args], cwd=cwd, capture_output=True, text=True,
        timeout=timeout, env={**os.environ, "KERNEL_BROKER_URL": broker,
                              "KERNEL_RESULT_BACKEND": broker, "PYTHONPATH": str(cwd),
                              "COLUMNS": "250", **(env or {})})


def queue_of(spec: str, cwd: Path) -> str:
    """The queue the task module `spec` (from `write_tasks`) consumes."""
    text = (cwd / f"{spec.partition(':')[0]}.py").read_text()
    return text.split("'task_default_queue': '")[1].split("'")[0]


def client(broker: str, spec: str, cwd: Path) -> App:
    """An App sending to the queue of task module `spec`."""
    return App("ops-client", broker=broker, results=broker,
               config={"task_default_queue": queue_of(spec, cwd)})
