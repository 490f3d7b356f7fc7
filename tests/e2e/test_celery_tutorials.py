"""Celery's own tutorial projects run on kernel with only their import line changed: the "First
steps" ``tasks.py`` (and its ``celeryconfig.py``: routes, annotations) and the "Next steps"
``proj/`` layout (``proj/celery.py``, ``proj/tasks.py``, found by ``-A proj`` where Celery's
``-A`` finds it), each served by a real ``kernel worker`` subprocess on Redis, results in Redis.

The files are docs/examples' own; the test copies them and points their Redis URL at a
database of its own (``KERNEL_TEST_REDIS_URL``, default ``redis://127.0.0.1:6379/12``)."""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kernel import group
from kernel.testing.servers import unavailable
from kernel.testing.workers import WorkerProcess

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
REDIS_URL = os.environ.get("KERNEL_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")
#: the URL the tutorials write.
TUTORIAL_URL = "redis://localhost:6379/0"


@pytest.fixture
def redis_url() -> str:
    host, _, port = REDIS_URL.split("//")[1].split("/")[0].partition(":")
    try:
        socket.create_connection((host, int(port or 6379)), timeout=1).close()
    except OSError as exc:
        unavailable(f"no Redis at {REDIS_URL} ({exc}); start one or set KERNEL_TEST_REDIS_URL")
    return REDIS_URL


@pytest.fixture
def project(tmp_path: Path, redis_url: str) -> Iterator[Callable[[str], Path]]:
    """``project("celery-first-steps")``: a copy of that example with its own Redis database
    and queue names, on sys.path for the test's own imports; those imports are forgotten
    after."""
    before = set(sys.modules)
    made: list[Path] = []

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(EXAMPLES / name, target)
        for path in target.rglob("*.py"):
            path.write_text(path.read_text().replace(TUTORIAL_URL, redis_url))
        sys.path.insert(0, str(target))
        made.append(target)
        return target

    yield copy
    for target in made:
        sys.path.remove(str(target))
    for module in set(sys.modules) - before:
        if module in ("tasks", "celeryconfig", "proj") or module.startswith("proj."):
            del sys.modules[module]


def worker(app_spec: str, path: Path, redis_url: str, *args: str) -> WorkerProcess:
    # The queue names are the tutorials' own: a node name of the test's keeps workers apart.
    return WorkerProcess(app_spec, broker=redis_url, results=redis_url, path=path,
                         cwd=path, log=path / "worker.log", loglevel="info",
                         nodename=f"tutorial-{uuid.uuid4().hex[:6]}@localhost", args=args)


def purge(app: Any, *queues: str) -> None:
    for queue in queues:
        app.transport.purge(queue)


def test_first_steps_tasks_py_runs_on_a_kernel_worker(project: Callable[[str], Path],
                                                      redis_url: str) -> None:
    path = project("celery-first-steps")
    tasks = importlib.import_module("tasks")
    purge(tasks.app, "celery")
    with worker("tasks", path, redis_url) as process:
        process.wait_ready()
        result = tasks.add.delay(4, 4)
        assert result.get(timeout=30) == 8, "add.delay(4, 4) as the tutorial calls it"
        assert result.successful() and result.ready()
        assert process.failures() == []
    tasks.app.close()


def test_first_steps_with_its_configuration_module(project: Callable[[str], Path],
                                                   redis_url: str) -> None:
    path = project("celery-first-steps")
    # The tutorial's "Configuration" section: one line added to tasks.py.
    module = path / "tasks.py"
    module.write_text(module.read_text() + '\napp.config_from_object("celeryconfig")\n')
    tasks = importlib.import_module("tasks")
    assert tasks.app.conf.timezone == "Europe/Oslo"
    assert tasks.add.options.rate_limit == "10/m", "task_annotations apply"
    purge(tasks.app, "low-priority")
    # task_routes sends add to "low-priority", which the tutorial's worker is told to consume.
    with worker("tasks", path, redis_url, "-Q", "low-priority") as process:
        process.wait_ready()
        result = tasks.add.delay(2, 3)
        assert result.get(timeout=30) == 5
        log = process.output()
        assert "setting enable_utc is ignored" in log, "the one warning line for enable_utc"
        assert process.failures() == []
    tasks.app.close()


def test_next_steps_proj_layout_runs_with_dash_a_proj(project: Callable[[str], Path],
                                                      redis_url: str) -> None:
    path = project("celery-next-steps")
    tasks = importlib.import_module("proj.tasks")
    app = tasks.app
    assert app.conf.result_expires == 3600
    purge(app, "celery")
    with worker("proj", path, redis_url, "-c", "2") as process:
        process.wait_ready()
        assert tasks.add.delay(2, 2).get(timeout=30) == 4
        assert tasks.xsum.delay([1, 2, 3]).get(timeout=30) == 6
        assert (tasks.add.s(4, 4) | tasks.mul.s(8))().get(timeout=30) == 64, \
            "the Next steps chain"
        assert group(tasks.add.s(i, i) for i in range(10))().get(timeout=30) == [
            i + i for i in range(10)], "the Next steps group"
        assert process.failures() == []
    app.close()
