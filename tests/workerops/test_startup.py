"""Honest start-up: a worker whose broker cannot be reached says so, with the real pause before
its next attempt, says ``ready`` only once the broker answered, and exits with a sentence when
its attempts are spent. A closed port and a private redis-server started late stand in for a
broker that is down and one that comes up."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from kernel import App
from kernel.testing.servers import free_port
from kernel.testing.transport import wait_for
from kernel.testing.workers import WorkerProcess
from tests.workerops.conftest import write_tasks


def closed_broker() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


def worker(tmp_path: Path, broker: str, *args: str, **config: object) -> WorkerProcess:
    app = write_tasks(tmp_path, broker_connection_timeout=0.5, **config)
    return WorkerProcess(app, broker=broker, results=None, path=tmp_path, log=tmp_path / "w.log",
                         loglevel="info", pool="solo", args=args, grace=20)


def test_spent_attempts_end_the_worker_with_a_sentence_and_never_ready(redis_url: str,
                                                                       tmp_path: Path) -> None:
    w = worker(tmp_path, closed_broker(), broker_connection_max_retries=2).start()
    try:
        wait_for(lambda: not w.running, 60, "the worker to give up")
    finally:
        w.stop()
    out = w.output()
    assert w.returncode == 2, out
    assert "ready." not in out
    pauses = re.findall(r"trying again in (\d+) s \(attempt (\d) of 2\)", out)
    assert pauses == [("1", "1"), ("2", "2")], out
    assert "gave up after 3 attempts" in out.splitlines()[-1], out


def test_the_pause_logged_is_the_pause_taken(redis_url: str, tmp_path: Path) -> None:
    w = worker(tmp_path, closed_broker(), broker_connection_max_retries=3).start()
    try:
        wait_for(lambda: not w.running, 60, "the worker to give up")
    finally:
        w.stop()
    stamps = [time.mktime(time.strptime(m[0], "%Y-%m-%d %H:%M:%S")) + int(m[1]) / 1000
              for m in re.findall(r"^\[(\S+ \S+),(\d+) ERROR.*trying again in", w.output(), re.M)]
    took = [float(t) for t in re.findall(r"the attempt took ([\d.]+) s", w.output())]
    assert len(stamps) == 3, w.output()
    # between two failure lines: the pause announced, then the next attempt
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    for gap, pause, attempt in zip(gaps, (1, 2), took[1:], strict=True):
        assert pause + attempt - 0.3 <= gap <= pause + attempt + 0.5, (gap, pause, attempt)


def test_no_retry_on_startup_exits_after_one_attempt(redis_url: str, tmp_path: Path) -> None:
    w = worker(tmp_path, closed_broker(), broker_connection_retry_on_startup=False).start()
    try:
        wait_for(lambda: not w.running, 30, "the worker to give up")
    finally:
        w.stop()
    assert w.returncode == 2
    last = w.output().splitlines()[-1]
    assert "gave up after 1 attempt:" in last and "broker_connection_retry" in last, last


def test_ready_only_once_the_broker_answers(redis_url: str, tmp_path: Path) -> None:
    from kernel_redis.testing import RedisServer

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    w = worker(tmp_path, url, task_default_queue="late")
    w.env["KERNEL_RESULT_BACKEND"] = url
    w.start()
    server = RedisServer(tmp_path / "redis", port=port)
    try:
        wait_for(lambda: "trying again in" in w.output() or not w.running, 30,
                 "the first failed attempt")
        assert "ready." not in w.output()
        server.start()
        w.wait_ready(timeout=60)
        out = w.output()
        assert out.index("reached the broker at") < out.index("ready."), out
        app = App("client", broker=url, results=url, config={"task_default_queue": "late"})
        try:
            assert app.send_task("ops.add", (2, 3)).get(timeout=20) == 5
        finally:
            app.close()
    finally:
        w.stop()
        server.stop()
    assert w.returncode == 0, w.tail()


def test_solo_banner_shows_concurrency_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    w = worker(tmp_path, url).start()
    try:
        w.wait_ready()
    finally:
        w.stop()
    assert "solo, concurrency 1" in w.output(), w.output()


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_a_worker_that_lost_its_broker_exits_once_its_attempts_are_spent(
        redis_url: str, tmp_path: Path, pool: str) -> None:
    from kernel_redis.testing import RedisServer

    server = RedisServer(tmp_path / "redis").start()
    w = worker(tmp_path, server.url, broker_connection_max_retries=1)
    w.env["KERNEL_RESULT_BACKEND"] = server.url
    w.command[w.command.index("-P") + 1] = pool
    try:
        w.start().wait_ready(60)
        server.stop()
        wait_for(lambda: not w.running, 90, "the worker to give up on its lost broker")
    finally:
        w.stop()
        server.stop()
    out = w.output()
    assert w.returncode == 1, out
    assert "trying again in 1 s (attempt 1 of 1)" in out, out
    # threads: the fetcher gives up; prefork: the supervising process, which watches the broker
    assert re.search(r"cannot (fetch from|reach) the broker at \S+ \(.*\); gave up after 2 "
                     r"attempts", out), out
    assert "shutting down (exit status 1)" in out, out
