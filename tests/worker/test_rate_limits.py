"""Rate limits: per worker (token bucket) without holding up other task types, and global
across workers (time slots in the result store)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from kernel import App, ConfigurationError
from kernel.worker import Worker
from kernel.parsing import parse_rate
from tests.worker.conftest import make_app
from tests.helpers import wait_for

pytestmark = pytest.mark.slow


def starts_per_second(starts: list[float]) -> float:
    starts = sorted(starts)
    return (len(starts) - 1) / (starts[-1] - starts[0])


def test_rates_parse_and_bad_ones_say_what_is_expected() -> None:
    assert parse_rate("10/s") == 10 and parse_rate("120/m") == 2 and parse_rate("3600/h") == 1
    with pytest.raises(ConfigurationError, match="N/s, N/m or N/h"):
        parse_rate("10 per second")


def test_200_tasks_at_20_per_second_take_10_seconds_and_others_are_not_held_up() -> None:
    url = f"memory://{uuid.uuid4().hex}"
    app = App("rl", broker=url, results=url)
    starts: list[float] = []
    lock = threading.Lock()

    @app.task(name="limited", rate_limit="20/s", ignore_result=True)
    def limited() -> None:
        with lock:
            starts.append(time.monotonic())

    @app.task(name="free")
    def free() -> float:
        return time.monotonic()

    worker = Worker(app, pool="threads", concurrency=4, shutdown_timeout=5)
    worker.start()
    try:
        begun = time.monotonic()
        app.send_many([("limited", (), {}) for _ in range(200)])
        free_done = app.tasks["free"].delay().get(timeout=10)
        assert free_done - begun < 1.0, "a rate-limited task type must not hold up others"
        wait_for(lambda: len(starts) == 200, 30, "not every limited task ran")
        took = max(starts) - min(starts)
        assert 9.0 <= took <= 11.0, f"200 tasks at 20/s took {took:.2f} s (expect 10 s ± 10%)"
    finally:
        worker.stop()
        app.close()


def test_a_global_rate_limit_holds_across_three_workers(shared_broker_url: str) -> None:
    broker_url = shared_broker_url
    queue = f"q-{uuid.uuid4().hex}"
    apps = [make_app("grl", broker_url, task_default_queue=queue) for _ in range(3)]
    starts: list[float] = []
    lock = threading.Lock()
    for app in apps:
        @app.task(name=f"shared-{queue}", global_rate_limit="20/s", ignore_result=True)
        def shared() -> None:
            with lock:
                starts.append(time.time())

    # Each worker consumes a queue of its own, so all three take part whatever their timing
    # (one worker could otherwise fetch all 100 and prove nothing about other workers).
    workers = [Worker(app, pool="threads", concurrency=2, shutdown_timeout=5,
                      queues=[f"{queue}-{i}"]) for i, app in enumerate(apps)]
    for worker in workers:
        worker.start()
    try:
        for n in range(100):
            apps[0].send_task(f"shared-{queue}", queue=f"{queue}-{n % 3}")
        wait_for(lambda: len(starts) == 100, 30, "not every limited task ran")
        rate = starts_per_second(starts)
        assert 18.0 <= rate <= 22.0, f"aggregate rate {rate:.1f}/s, limit 20/s (± 10%)"
        by_worker = [w.consumer.counters.processed for w in workers if w.consumer]
        assert all(by_worker) and len(by_worker) == 3, f"work was shared: {by_worker}"
    finally:
        for worker in workers:
            worker.stop()
        for app in apps:
            app.close()
