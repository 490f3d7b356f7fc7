"""A real `kernel worker` subprocess (prefork) on a SQLite file, driven from this process."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from kernel import App, ChordError, Signature, TimeLimitExceeded, chord, states
from tests.helpers import wait_for

pytestmark = pytest.mark.slow


def send(client: App, name: str, *args: Any, **options: Any) -> Any:
    return client.send_task(f"tests.e2e.tasks.{name}", args, **options)


def test_a_thousand_sync_and_async_tasks_through_prefork(client: App, start_worker: Any) -> None:
    worker = start_worker("-P", "prefork", "-c", "2")
    calls = [("tests.e2e.tasks.add" if i % 2 else "tests.e2e.tasks.async_add", (i, i), {})
             for i in range(1000)]
    results = client.send_many(calls)
    values = [r.get(timeout=60) for r in results]
    assert values == [2 * i for i in range(1000)]
    assert worker.stop() == 0
    assert client.transport.size("celery") == 0, "every message is acked after its task ran"


def test_max_tasks_per_child_replaces_children(client: App, start_worker: Any) -> None:
    start_worker("-P", "prefork", "-c", "1", "--max-tasks-per-child", "2")
    pids = [send(client, "pid").get(timeout=30) for _ in range(8)]
    assert len(set(pids)) >= 4, f"a child must be replaced after 2 tasks, saw pids {pids}"


def test_max_memory_per_child_replaces_a_growing_child(client: App, start_worker: Any) -> None:
    start_worker("-P", "prefork", "-c", "1", "--max-memory-per-child", str(150 * 1024))
    first = send(client, "grow", 1).get(timeout=30)
    assert send(client, "pid").get(timeout=30) == first, "a small task keeps its child"
    grower = send(client, "grow", 200).get(timeout=30)
    after = send(client, "pid").get(timeout=30)
    assert after != grower, "the child past 150 MiB must be replaced after its task"


def test_hard_time_limit_kills_and_the_worker_keeps_serving(client: App,
                                                            start_worker: Any) -> None:
    start_worker("-P", "prefork", "-c", "1")
    looping = send(client, "spin")
    with pytest.raises(TimeLimitExceeded):
        looping.get(timeout=30)
    assert looping.state == states.FAILURE
    assert send(client, "add", 2, 3).get(timeout=30) == 5


def test_a_header_task_killed_at_its_hard_limit_fails_its_chord(client: App,
                                                               start_worker: Any) -> None:
    """The kill happens in the consumer, not in the task's middleware: the chord still counts
    the member, and fails instead of waiting for ever."""
    start_worker("-P", "prefork", "-c", "2")

    def sig(name: str, *args: Any) -> Signature:
        return Signature(f"tests.e2e.tasks.{name}", args, app=client)

    result = chord([sig("add", 1, 1), sig("spin")], sig("total")).apply_async()
    with pytest.raises(ChordError, match="TimeLimitExceeded"):
        result.get(timeout=30)


def test_worker_wide_time_limits_apply_to_tasks_without_their_own(client: App,
                                                                  start_worker: Any) -> None:
    start_worker("-P", "prefork", "-c", "2", "--time-limit", "1", "--soft-time-limit", "0.5")
    soft = send(client, "soft_without_limit")
    looping = send(client, "spin_without_limit")
    assert soft.get(timeout=30) == "the worker's soft limit raised inside the task"
    with pytest.raises(TimeLimitExceeded):
        looping.get(timeout=30)


def test_soft_time_limit_raises_inside_the_task(client: App, start_worker: Any) -> None:
    start_worker("-P", "prefork", "-c", "1")
    assert send(client, "soft").get(timeout=30) == "soft limit raised inside the task"


def test_kill_9_of_a_child_mid_task_does_not_lose_it(client: App, start_worker: Any,
                                                     tmp_path: Path) -> None:
    start_worker("-P", "prefork", "-c", "2")
    marker = tmp_path / "first-run.pid"
    result = send(client, "block_first_time", str(marker))
    wait_for(lambda: marker.exists() and marker.read_text(), 30, "task never started")
    os.kill(int(marker.read_text()), signal.SIGKILL)
    assert result.get(timeout=60) == "done after redelivery"


def test_a_killed_child_fails_the_task_when_it_must_not_be_redelivered(
        client: App, start_worker: Any, tmp_path: Path) -> None:
    from kernel import WorkerLostError

    start_worker("-P", "prefork", "-c", "1")
    marker = tmp_path / "first-run.pid"
    result = send(client, "block_first_time_no_redelivery", str(marker))
    wait_for(lambda: marker.exists() and marker.read_text(), 30, "task never started")
    os.kill(int(marker.read_text()), signal.SIGKILL)
    with pytest.raises(WorkerLostError):
        result.get(timeout=30)
    assert send(client, "add", 1, 2).get(timeout=30) == 3, "a replacement child serves on"


def test_a_poison_message_goes_to_the_dead_letter_queue_after_the_delivery_cap(
        client: App, start_worker: Any) -> None:
    worker = start_worker("-P", "prefork", "-c", "1", env={"E2E_MAX_DELIVERIES": "3"})
    poison = send(client, "crash_the_process")
    wait_for(lambda: len(client.transport.dead_letters("celery")) == 1, 60,
             "the poison message never reached the dead-letter queue")
    dead = client.transport.dead_letters("celery")[0]
    assert dead.envelope.headers["id"] == poison.id
    assert "delivered 4 times" in dead.extra["reason"]
    assert "delivered 4 times" in worker.log
    # The worker dead-letters the message, then records REJECTED: wait for the record.
    wait_for(lambda: poison.state == states.REJECTED, 10, "the REJECTED record")
    assert send(client, "add", 2, 2).get(timeout=30) == 4


def test_kill_9_of_the_whole_worker_then_a_new_worker_finishes_everything(
        client: App, start_worker: Any) -> None:
    short_lease = {"E2E_LEASE": "2"}
    results = client.send_many([("tests.e2e.tasks.slow_add", (i, 1), {}) for i in range(300)])
    first = start_worker("-P", "prefork", "-c", "2", env=short_lease)
    wait_for(lambda: sum(r.ready() for r in results[:40]) >= 10, 60, "no task finished")
    first.kill_all()
    start_worker("-P", "prefork", "-c", "2", env=short_lease)
    assert [r.get(timeout=120) for r in results] == [i + 1 for i in range(300)]


def test_bad_input_is_rejected_with_a_reason_and_the_worker_goes_on(
        client: App, start_worker: Any) -> None:
    from kernel.interfaces.transport import Outgoing
    from kernel.message import Envelope

    transport = client.transport
    good = client.send_task("tests.e2e.tasks.add", (1, 1))
    unknown = client.send_task("tests.e2e.tasks.no_such_task", (1,))
    no_task_header = Envelope(b"[[], {}, {}]", {"id": "abc"}, {}, "application/json")
    pickled = client.send_task("tests.e2e.tasks.add", (1, 2), serializer="pickle")
    two_element = Envelope(b"[[1, 2], {}]", {"task": "tests.e2e.tasks.add", "id": "two-el"},
                           {}, "application/json")
    not_json = Envelope(b"{not json", {"task": "tests.e2e.tasks.add", "id": "bad-json"}, {},
                        "application/json")
    transport.publish([Outgoing("celery", e) for e in (no_task_header, two_element, not_json)])
    after = client.send_task("tests.e2e.tasks.add", (20, 22))

    worker = start_worker("-P", "prefork", "-c", "2")
    assert good.get(timeout=30) == 2
    assert after.get(timeout=30) == 42
    wait_for(lambda: len(transport.dead_letters("celery")) >= 5, 30,
             "five bad messages should be in the dead-letter queue")
    log = worker.log
    assert "no_such_task' is not registered" in log
    assert "no 'task' header" in log
    assert "refusing content type 'application/x-python-serialize'" in log
    assert "must be [args, kwargs, embed]" in log
    assert "not valid JSON" in log
    from kernel.errors import MessageError

    for refused, why in ((unknown, "is not registered"), (pickled, "refusing content type")):
        assert refused.state == states.REJECTED
        with pytest.raises(MessageError, match=why):
            refused.get(timeout=5)
    assert worker.stop() == 0


def test_sigterm_waits_for_the_running_task_and_returns_prefetched_ones(
        client: App, start_worker: Any, tmp_path: Path) -> None:
    worker = start_worker("-P", "prefork", "-c", "1")
    marker = tmp_path / "running"
    running = send(client, "sleep_until", str(marker))
    wait_for(marker.exists, 30, "task never started")
    waiting = [send(client, "add", i, i) for i in range(3)]
    wait_for(lambda: client.transport.size("celery") == 0, 30, "worker should prefetch them")
    worker.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "waiting for 1 running task" in worker.log, 30, "no warm shutdown")
    assert worker.proc.poll() is None, "a warm shutdown waits for the running task"
    (tmp_path / "running.go").touch()
    assert worker.proc.wait(30) == 0
    assert running.get(timeout=10) == "finished"
    assert client.transport.size("celery") == 3, "prefetched tasks go back, unstarted"
    assert all(r.state == states.PENDING for r in waiting)


def test_a_second_sigterm_is_a_cold_shutdown_that_gives_the_running_task_back(
        client: App, start_worker: Any, tmp_path: Path) -> None:
    worker = start_worker("-P", "prefork", "-c", "1")
    marker = tmp_path / "running"
    running = send(client, "sleep_until", str(marker))
    wait_for(marker.exists, 30, "task never started")
    worker.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "waiting for 1 running task" in worker.log, 30, "no warm shutdown")
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(30) == 0
    assert "cold shutdown" in worker.log
    assert running.state == states.PENDING
    assert client.transport.size("celery") == 1, "the interrupted task is back in its queue"


def test_the_banner_shows_the_setup_and_never_a_password(tmp_path: Path) -> None:
    from tests.e2e.conftest import WorkerProcess

    url = f"sqlite:///{tmp_path / 'k.db'}"
    # credentials in a URL the banner prints (sqlite ignores them); the banner must mask them
    worker = WorkerProcess(url.replace("sqlite:///", "sqlite://admin:s3cret@/"),
                           tmp_path / "w.log", "-P", "threads", "-c", "3", "-Q", "a,b")
    try:
        # sqlite refuses a URL with credentials after printing the banner; either way the
        # whole banner is out once the worker is ready or has exited
        wait_for(lambda: "ready." in worker.log or worker.proc.poll() is not None, 30,
                 "no banner")
    finally:
        worker.kill_all()
    log = worker.log
    assert "s3cret" not in log
    for expected in ("threads, concurrency 3", "a, b", "tests.e2e.tasks.async_add"):
        assert expected in log, f"banner lacks {expected!r}:\n{log}"


def test_a_per_worker_rate_limit_holds_for_the_whole_prefork_worker(
        client: App, start_worker: Any, tmp_path: Path) -> None:
    # Each child consumes on its own: they keep to the worker's 20/s together.
    stamps = tmp_path / "stamps"
    start_worker("-P", "prefork", "-c", "2")
    client.send_many([("tests.e2e.tasks.stamp", (str(stamps),), {}) for _ in range(60)])
    wait_for(lambda: stamps.exists() and len(stamps.read_text().splitlines()) == 60, 30,
             "every task to run")
    lines = [line.split() for line in stamps.read_text().splitlines()]
    times = sorted(float(t) for t, _ in lines)
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert 18.0 <= rate <= 22.0, f"{rate:.1f} tasks/s, limit 20/s for the worker (± 10%)"


def test_the_heartbeat_file_of_a_prefork_worker_stops_when_one_child_is_stuck(
        client: App, start_worker: Any, tmp_path: Path) -> None:
    # Each child beats to the worker's process, which touches the file while every one does.
    beat = tmp_path / "alive"
    start_worker("-P", "prefork", "-c", "2", "--heartbeat-file", str(beat))
    first = wait_for(lambda: beat.exists() and beat.stat().st_mtime, 30, "the file")
    wait_for(lambda: beat.stat().st_mtime > first, 30, "a second touch")
    child = send(client, "pid").get(timeout=30)
    os.kill(child, signal.SIGSTOP)  # alive, but doing nothing
    try:
        wait_for(lambda: time.time() - beat.stat().st_mtime > 8, 30,
                 "the file to go stale while a child is stopped")
    finally:
        os.kill(child, signal.SIGCONT)
    stale = beat.stat().st_mtime
    wait_for(lambda: beat.stat().st_mtime > stale, 30, "touched again once the child goes on")
