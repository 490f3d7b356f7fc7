"""Rate limits: per worker (token bucket) without holding up other task types, and global
across workers (time slots in the result store)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

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


def run_stamped(config: dict[str, object], rate_limit: str | None, count: int,
                before: Callable[[App, Worker], None] | None = None) -> float:
    """Seconds between the first and last of `count` runs of one task (options `rate_limit`)
    on a threads worker of an App with `config`."""
    url = f"memory://{uuid.uuid4().hex}"
    app = App("rl", broker=url, results=url, config=dict(config))
    starts: list[float] = []
    lock = threading.Lock()

    @app.task(name="stamped", rate_limit=rate_limit, ignore_result=True)
    def stamped() -> None:
        with lock:
            starts.append(time.monotonic())

    worker = Worker(app, pool="threads", concurrency=4, shutdown_timeout=5)
    worker.start()
    try:
        if before is not None:
            before(app, worker)
        app.send_many([("stamped", (), {}) for _ in range(count)])
        wait_for(lambda: len(starts) == count, 30, f"not every one of {count} tasks ran")
        return max(starts) - min(starts)
    finally:
        worker.stop()
        app.close()


def test_task_default_rate_limit_holds_tasks_that_give_none() -> None:
    took = run_stamped({"task_default_rate_limit": "10/s"}, None, 21)
    assert 1.8 <= took <= 2.5, f"21 tasks at the default 10/s took {took:.2f} s (expect 2 s)"
    own = run_stamped({"task_default_rate_limit": "1/s"}, "20/s", 21)
    assert own < 1.5, f"the task's own 20/s wins over the default 1/s, yet took {own:.2f} s"


def test_worker_disable_rate_limits_turns_every_limit_off() -> None:
    took = run_stamped({"worker_disable_rate_limits": True,
                        "task_default_rate_limit": "1/s"}, "1/s", 20)
    assert took < 1.5, f"20 tasks limited to 1/s ran in {took:.2f} s with limits disabled"


def test_the_remote_rate_limit_command_lifts_the_default_too() -> None:
    def lift(app: App, worker: Worker) -> None:
        replies = app.control.rate_limit("stamped", None, reply=True,
                                         destination=[worker.nodename])
        assert replies, "the worker answered the rate_limit command"

    took = run_stamped({"task_default_rate_limit": "1/s"}, None, 10, before=lift)
    assert took < 1.5, f"10 tasks took {took:.2f} s after rate_limit(None) lifted the 1/s default"


def test_a_bad_default_rate_limit_names_the_setting() -> None:
    with pytest.raises(ConfigurationError, match="setting 'task_default_rate_limit': rate limit "
                                                 "'fast' is not N/s"):
        App("rl", broker="memory://", config={"task_default_rate_limit": "fast"})
