"""The worker-process helper, on the embedded SQLite broker: workers run what the client sends,
stop warmly, die at once when killed, and a wait for results fails saying which tasks are
missing, in what state, and where the workers' logs are."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel.testing.workers import Workers

HERE = Path(__file__).parent


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    url = f"sqlite:///{tmp_path / 'kernel.db'}"
    with Workers("worker_tasks:app", broker=url, results=url, path=HERE,
                 logs=tmp_path / "logs") as made:
        yield made


@pytest.mark.timeout(120)
def test_two_workers_run_what_the_client_sends_and_stop_warmly(workers: Workers) -> None:
    first = workers.start(loglevel="info")
    second = workers.start(pool="solo", concurrency=1, args=("--prefetch-multiplier", "1"),
                           loglevel="info")
    first.wait_ready()
    second.wait_ready()  # a worker stopped before it set its signal handlers dies of SIGTERM
    ids = workers.send("kit.add", (2, 3), n=30)
    workers.wait_succeeded(ids, 60)
    assert {workers.client.AsyncResult(i).result for i in ids} == {5}
    assert (first.nodename, second.nodename) == (f"w0@{workers.queue}", f"w1@{workers.queue}")
    workers.close()
    assert [first.returncode, second.returncode] == [0, 0], \
        f"a worker did not stop warmly at SIGTERM; see {workers.logs}"


@pytest.mark.timeout(120)
def test_a_task_that_did_not_succeed_fails_the_wait_at_once(workers: Workers) -> None:
    worker = workers.start()
    ids = workers.send("kit.add", (1, 1)) + workers.send("kit.fail")
    with pytest.raises(AssertionError) as info:
        workers.wait_succeeded(ids, 60)
    message = str(info.value)
    assert f"task {ids[1]} ended FAILURE" in message and "ZeroDivisionError" in message
    assert f"worker logs in {workers.logs}" in message
    failed = workers.wait(lambda: worker.failures("warning"), 10, "the failure in the log")
    assert "failing on purpose" in failed[0] and worker.failures() == [], \
        "a failed task is a warning, not an error of the worker"

    [unknown] = workers.send("kit.unknown")
    with pytest.raises(AssertionError, match=f"task {unknown} ended REJECTED"):
        workers.wait_succeeded([unknown], 60)
    errors = workers.wait(worker.failures, 10, "the rejection in the log")
    assert "kit.unknown" in errors[0]
    assert "worker 0 logged: " in workers.describe(), "what a worker logged as an error " \
        "is in every failure message"


def test_waiting_for_readiness_needs_the_ready_line(workers: Workers) -> None:
    with pytest.raises(ValueError, match="start it with loglevel='info'"):
        workers.start().wait_ready()


def test_the_wait_names_the_missing_tasks_and_their_states(workers: Workers) -> None:
    ids = workers.send("kit.add", (1, 2), n=12)  # no worker runs them
    with pytest.raises(AssertionError) as info:
        workers.wait_succeeded(ids, 0.3)
    message = str(info.value)
    assert message.startswith("12 of 12 tasks did not succeed within 0.3s: "), message
    assert f"{ids[0]} " in message and " and 2 more" in message, \
        "the first ten are named, the rest counted"
    assert "workers alive []" in message and str(workers.logs) in message


@pytest.mark.timeout(120)
def test_a_killed_worker_dies_at_once_and_another_finishes_its_work(workers: Workers) -> None:
    victim = workers.start(pool="prefork", concurrency=1)
    [first] = workers.send("kit.add", (0, 1))
    workers.wait_succeeded([first], 60)
    victim.kill()
    assert victim.returncode == -signal.SIGKILL and not victim.running
    workers.start()
    ids = workers.send("kit.add", (1, 1), n=5)
    workers.wait_succeeded(ids, 60)
