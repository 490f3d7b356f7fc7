"""The brokers the worker features are proven on: in-memory, the embedded SQLite default and
Redis (the kernel-redis plugin against the server on 127.0.0.1:6379).

Redis is skipped only off CI, when the plugin is not installed or the server is unreachable;
with CI set, a missing Redis fails the run with a sentence.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kernel import App
from kernel.worker import Worker
from tests.worker.canvas_app import Book, make_canvas_app, running

REDIS_URL = os.environ.get("KERNEL_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def _redis_missing() -> str | None:
    try:
        import kernel_redis  # noqa: F401
    except ImportError:
        return "kernel-redis is not installed (nox -s tests installs it)"
    host, _, port = REDIS_URL.split("//")[1].split("/")[0].partition(":")
    try:
        socket.create_connection((host, int(port or 6379)), timeout=1).close()
    except OSError as exc:
        return f"no Redis at {REDIS_URL} ({exc})"
    return None


def _url(kind: str, tmp_path: Path) -> str:
    if kind == "memory":
        return f"memory://{uuid.uuid4().hex}"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'k.db'}"
    missing = _redis_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"Redis tests must run in CI: {missing}")
        pytest.skip(missing)
    return REDIS_URL


@pytest.fixture(params=["memory", "sqlite", "redis"])
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _url(request.param, tmp_path)


@pytest.fixture(params=["sqlite", "redis"])
def shared_broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Brokers several worker processes can share."""
    return _url(request.param, tmp_path)


def make_app(name: str, url: str, **config: Any) -> App:
    """An App on `url` with a queue of its own, so tests sharing a Redis never meet."""
    config.setdefault("task_default_queue", f"q-{uuid.uuid4().hex}")
    return App(name, broker=url, results=url, config=config)


@pytest.fixture
def app_factory(broker_url: str) -> Iterator[Any]:
    made: list[App] = []

    def make(name: str = "t", **config: Any) -> App:
        app = make_app(name, broker_url, **config)
        made.append(app)
        return app

    yield make
    for app in made:
        app.close()


@pytest.fixture
def canvas(broker_url: str) -> Iterator[tuple[App, Book, Worker]]:
    """A canvas app (tests/worker/canvas_app.py) with a worker running, on each broker."""
    app, book = make_canvas_app(broker_url)
    with running(app) as worker:
        yield app, book, worker
    app.close()
