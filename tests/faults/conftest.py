"""The brokers the scenarios run on, each a server (or file) of the test's own, never a shared
one: SQLite (a file), Redis (a private redis-server with an append-only file, fsynced on every
write), RabbitMQ (a private node, with results on a private Redis). And the figures: the file
is emptied when the run starts, and the table printed at its end."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from kernel_amqp.testing import RabbitNode
from kernel_redis.testing import RedisServer
from tests.faults.figures import figures_file, load, table
from tests.faults.harness import Broker, Scenario, broker_on_redis, durable_redis


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller, not a worker of pytest-xdist
        figures_file().unlink(missing_ok=True)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    rows = load()
    if rows and not hasattr(config, "workerinput"):
        terminalreporter.write_sep("=", f"fault figures ({figures_file()})")
        terminalreporter.write_line(table(rows))


@pytest.fixture
def on_sqlite(tmp_path: Path) -> Broker:
    path = tmp_path / "kernel.db"
    url = f"sqlite:///{path}"

    def outstanding(queue: str) -> int:
        with closing(sqlite3.connect(path, timeout=30)) as db:
            (count,) = db.execute("SELECT count(*) FROM kernel_messages WHERE queue = ?",
                                  (queue,)).fetchone()
            return int(count)

    return Broker("SQLite", url, url, outstanding)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = durable_redis(tmp_path / "redis").start()
    yield server
    server.kill()


@pytest.fixture
def on_redis(redis_server: RedisServer) -> Iterator[Broker]:
    with broker_on_redis(redis_server) as broker:
        yield broker


@pytest.fixture
def on_rabbitmq(tmp_path: Path) -> Iterator[Broker]:
    node = RabbitNode(tmp_path / "rabbit")
    results = RedisServer(tmp_path / "results")
    try:
        node.start()
        results.start()
        yield Broker("RabbitMQ", node.url, results.url, node.messages, node, poll=1.0)
    finally:
        node.kill()
        results.kill()


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> Broker:
    """The broker a test is parametrized with (indirectly: SQLITE, REDIS, RABBITMQ)."""
    found: Broker = request.getfixturevalue(request.param)
    return found


@pytest.fixture
def new_scenario(tmp_path: Path) -> Iterator[Callable[..., Scenario]]:
    """``new_scenario(title, broker, **options)``: a `Scenario` logging to the test's tmp_path,
    whose workers and client are stopped at the end whatever happened (list this fixture after
    the broker's, so it ends first)."""
    made: list[Scenario] = []

    def make(title: str, broker: Broker, **options: Any) -> Scenario:
        made.append(Scenario(title, broker, tmp_path, **options))
        return made[-1]

    yield make
    for scenario in made:
        scenario.close()
