"""Prefork behaviour beyond the conformance suite: crashes, kills, limits and shutdown that never
hangs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest

from kernel.errors import ConfigurationError
from kernel.interfaces.pool import Job, OutcomeKind
from kernel.std.pools.prefork.pool import EXIT_GRACE, PreforkPool
from kernel.testing.pool import Outcomes
from kernel.testing.pool_runners import SuiteRunner
from tests.helpers import wait_for
from tests.pools.runners import Unloadable

pytestmark = pytest.mark.timeout(60)

T = 20.0  # bound for what should take well under a second


def job(*payload: Any, **options: Any) -> Job:
    return Job(uuid.uuid4().hex, "test.job", payload, **options)


@pytest.fixture
def prefork() -> Iterator[Any]:
    pools: list[PreforkPool] = []

    def build(concurrency: int = 1, **limits: Any) -> PreforkPool:
        pool = PreforkPool(concurrency, **limits)
        pool.start(SuiteRunner())
        pools.append(pool)
        return pool

    yield build
    for pool in pools:
        pool.stop(wait=False)


def wait_gone(pids: list[int]) -> None:
    wait_for(lambda: not any(map(psutil.pid_exists, pids)), T, f"processes {pids} to be gone")


def marked_pid(marker: Path) -> int:
    return int(wait_for(lambda: marker.exists() and marker.read_text(), T, f"{marker}"))


def test_children_come_from_the_fork_server_not_from_the_worker(prefork: Any) -> None:
    pool = prefork(2)
    for pid in pool.info()["processes"]:
        assert psutil.Process(pid).ppid() != os.getpid(), "children must not be forked from us"


def test_kill_9_mid_job_loses_exactly_that_job_and_a_replacement_serves(
    prefork: Any, tmp_path: Path
) -> None:
    pool, outcomes = prefork(2), Outcomes()
    release = tmp_path / "release"
    victim = job("mark-wait", str(tmp_path / "a"), str(release), T)
    survivor = job("mark-wait", str(tmp_path / "b"), str(release), T)
    pool.submit(victim, outcomes)
    pool.submit(survivor, outcomes)
    victim_pid = marked_pid(tmp_path / "a")
    marked_pid(tmp_path / "b")

    os.kill(victim_pid, signal.SIGKILL)
    lost = outcomes.one(victim.id)
    assert (lost.kind, lost.pid) == (OutcomeKind.LOST, victim_pid)
    assert str(victim_pid) in lost.value
    assert len(outcomes.all) == 1, "only the killed child's job is reported"

    release.touch()
    assert outcomes.one(survivor.id).value == "released"
    wait_for(lambda: len(pool.info()["processes"]) == 2, T, "a replacement child")
    after = [job("pid") for _ in range(4)]
    for j in after:
        pool.submit(j, outcomes)
    got = outcomes.wait(6)
    assert all(got[j.id].kind is OutcomeKind.FINISHED for j in after)
    assert victim_pid not in {got[j.id].value for j in after}


def test_a_child_exiting_mid_job_is_lost_with_its_exit_code(prefork: Any) -> None:
    pool, outcomes = prefork(1), Outcomes()
    crash, after = job("exit", 7), job("echo", "after")
    pool.submit(crash, outcomes)
    pool.submit(after, outcomes)
    lost = outcomes.one(crash.id)
    assert lost.kind is OutcomeKind.LOST and "exit code 7" in lost.value
    assert outcomes.one(after.id).value == "after"


def test_hard_limit_kills_an_endless_loop_and_the_pool_keeps_serving(prefork: Any) -> None:
    pool, outcomes = prefork(1), Outcomes()
    loop = job("spin", 600, hard_time_limit=0.5)
    began = time.monotonic()
    pool.submit(loop, outcomes)
    timeout = outcomes.one(loop.id)
    assert timeout.kind is OutcomeKind.TIMEOUT and timeout.pid
    assert 0.5 <= time.monotonic() - began < T
    wait_gone([timeout.pid])
    after = job("pid")
    pool.submit(after, outcomes)
    assert outcomes.one(after.id).value not in (None, timeout.pid)


def test_soft_limit_raises_inside_the_job_and_is_cleared_after_it(prefork: Any) -> None:
    pool, outcomes = prefork(1), Outcomes()
    soft = job("soft", T, soft_time_limit=0.2)
    pool.submit(soft, outcomes)
    assert outcomes.one(soft.id).value == "soft"
    # Same child: a limit shorter than the job must not fire into the next job.
    quick = job("sleep", 0.01, soft_time_limit=0.3)
    later = job("soft", 0.6)
    pool.submit(quick, outcomes)
    pool.submit(later, outcomes)
    assert outcomes.one(quick.id).value == "slept"
    assert outcomes.one(later.id).value == "no-soft-limit"


def test_a_soft_limit_the_job_does_not_catch_is_reported_with_its_traceback(
    prefork: Any,
) -> None:
    pool, outcomes = prefork(1), Outcomes()
    uncaught = job("spin", 600, soft_time_limit=0.1, hard_time_limit=T)
    pool.submit(uncaught, outcomes)
    o = outcomes.one(uncaught.id)
    assert o.kind is OutcomeKind.FINISHED and "SoftTimeLimitExceeded" in o.extra["error"]


def test_terminate_a_queued_job_means_it_never_runs(prefork: Any, tmp_path: Path) -> None:
    pool, outcomes = prefork(1), Outcomes()
    release = tmp_path / "release"
    first = job("mark-wait", str(tmp_path / "a"), str(release), T)
    queued = job("mark-sleep", str(tmp_path / "never"), 0)
    pool.submit(first, outcomes)
    pool.submit(queued, outcomes)
    marked_pid(tmp_path / "a")
    assert pool.terminate_job(queued.id) is True
    assert outcomes.one(queued.id).kind is OutcomeKind.TERMINATED
    release.touch()
    assert outcomes.one(first.id).value == "released"
    assert not (tmp_path / "never").exists()


def test_grow_and_shrink_change_the_children(prefork: Any, tmp_path: Path) -> None:
    pool, outcomes = prefork(1), Outcomes()
    pool.grow(2)
    wait_for(lambda: len(pool.info()["processes"]) == 3, T, "3 children after grow(2)")
    release = tmp_path / "release"
    busy = job("mark-wait", str(tmp_path / "a"), str(release), T)
    pool.submit(busy, outcomes)
    busy_pid = marked_pid(tmp_path / "a")
    pool.shrink(2)
    # Idle children go first: the busy one finishes its job.
    wait_for(lambda: pool.info()["processes"] == [busy_pid], T, "only the busy child left")
    release.touch()
    assert outcomes.one(busy.id).value == "released"
    with pytest.raises(ValueError, match="at least one"):
        pool.shrink(1)


def test_shrinking_a_busy_pool_retires_children_after_their_job(
    prefork: Any, tmp_path: Path
) -> None:
    pool, outcomes = prefork(2), Outcomes()
    release = tmp_path / "release"
    busy = [job("mark-wait", str(tmp_path / f"m{i}"), str(release), T) for i in (0, 1)]
    for j in busy:
        pool.submit(j, outcomes)
    pids = {marked_pid(tmp_path / f"m{i}") for i in (0, 1)}
    pool.shrink(1)
    release.touch()
    got = outcomes.wait(2)
    assert all(got[j.id].value == "released" for j in busy), "shrink never loses a running job"
    wait_for(lambda: len(pool.info()["processes"]) == 1, T, "one child after shrink(1)")
    assert set(pool.info()["processes"]) <= pids


def test_many_jobs_reuse_the_children(prefork: Any) -> None:
    pool, outcomes = prefork(2), Outcomes()
    jobs = [job("pid") for _ in range(200)]
    for j in jobs:
        pool.submit(j, outcomes)
    got = outcomes.wait(200)
    assert {got[j.id].value for j in jobs} <= set(pool.info()["processes"])


def test_stop_with_wait_gives_up_on_a_stuck_child_at_the_timeout(
    prefork: Any, tmp_path: Path
) -> None:
    pool, outcomes = prefork(2), Outcomes()
    stuck = job("mark-spin", str(tmp_path / "a"), 600)
    never = [job("echo", i) for i in range(3)]
    pool.submit(stuck, outcomes)
    pid = marked_pid(tmp_path / "a")
    for j in never:
        pool.submit(j, outcomes)
    began = time.monotonic()
    pool.stop(wait=True, timeout=0.5)
    assert time.monotonic() - began < 0.5 + 2 * EXIT_GRACE
    got = outcomes.wait(4)
    assert got[stuck.id].kind is OutcomeKind.LOST
    assert not psutil.pid_exists(pid), "stop returns once the stuck child is gone"
    assert pool.info()["processes"] == []


def test_stop_without_wait_never_hangs_and_loses_everything(prefork: Any, tmp_path: Path) -> None:
    pool, outcomes = prefork(2), Outcomes()
    stuck = [job("mark-spin", str(tmp_path / f"m{i}"), 600) for i in (0, 1)]
    for j in stuck:
        pool.submit(j, outcomes)
    queued = job("echo", "queued")
    pool.submit(queued, outcomes)
    pids = [marked_pid(tmp_path / f"m{i}") for i in (0, 1)]
    began = time.monotonic()
    pool.stop(wait=False)
    assert time.monotonic() - began < 2 * EXIT_GRACE
    got = outcomes.wait(3)
    assert {o.kind for o in got.values()} == {OutcomeKind.LOST}
    wait_gone(pids)


def test_stop_is_idempotent_and_submit_after_stop_is_refused(prefork: Any) -> None:
    pool = prefork(1)
    pool.stop()
    pool.stop(wait=False)
    with pytest.raises(RuntimeError, match="not running"):
        pool.submit(job("echo", 1), Outcomes())
    assert pool.active == 0


def test_an_unpicklable_payload_is_refused_at_submit(prefork: Any) -> None:
    pool, outcomes = prefork(1), Outcomes()
    with pytest.raises(TypeError, match="cannot be pickled"):
        pool.submit(job("echo", lambda: None), outcomes)
    ok = job("echo", "fine")
    pool.submit(ok, outcomes)
    assert outcomes.one(ok.id).value == "fine"
    assert pool.active == 0


def test_an_unpicklable_runner_is_refused_at_start() -> None:
    pool = PreforkPool(1)
    with pytest.raises(TypeError, match="module-level"):
        pool.start(lambda job: None)


def test_a_runner_children_cannot_load_fails_start_clearly() -> None:
    pool = PreforkPool(2)
    began = time.monotonic()
    with pytest.raises(ConfigurationError, match="cannot be loaded in a child"):
        pool.start(Unloadable())
    assert time.monotonic() - began < T
    assert pool.info()["processes"] == []


def test_bad_limits_are_refused_with_a_sentence() -> None:
    with pytest.raises(ValueError, match="concurrency must be a positive integer"):
        PreforkPool(0)
    with pytest.raises(ValueError, match="max_tasks_per_child"):
        PreforkPool(1, max_tasks_per_child=0)


def test_stop_from_an_outcome_callback_does_not_deadlock(prefork: Any) -> None:
    pool, outcomes = prefork(2), Outcomes()

    def stop_on_first(outcome: Any) -> None:
        outcomes(outcome)
        pool.stop(wait=False)

    first = job("pid")
    pool.submit(first, stop_on_first)
    child = outcomes.one(first.id).value
    wait_gone([child])
    assert pool.info()["processes"] == []


EXITS_WITHOUT_STOP = """
import sys
from kernel.std.pools.prefork.pool import PreforkPool
from kernel.interfaces.pool import Job
from kernel.testing.pool_runners import SuiteRunner

if __name__ == "__main__":
    pool = PreforkPool(2)
    pool.start(SuiteRunner())
    pool.submit(Job("j", "t", ("spin", 600)), lambda outcome: None)
    print(*pool.info()["processes"])
"""


def test_an_interpreter_that_exits_without_stop_does_not_hang(tmp_path: Path) -> None:
    script = tmp_path / "main.py"
    script.write_text(EXITS_WITHOUT_STOP)
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=T, cwd=os.getcwd()
    )
    assert run.returncode == 0, run.stderr
    wait_gone(list(map(int, run.stdout.split())))


def test_children_do_not_outlive_a_worker_killed_with_9(tmp_path: Path) -> None:
    script = tmp_path / "main.py"
    script.write_text(
        EXITS_WITHOUT_STOP.replace(
            'print(*pool.info()["processes"])',
            'print(*pool.info()["processes"], flush=True)\n'
            "    import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
        )
    )
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=T)
    assert run.returncode == -signal.SIGKILL, run.stderr
    pids = list(map(int, run.stdout.split()))
    assert len(pids) == 2
    wait_gone(pids)


def test_sigterm_to_the_process_group_does_not_cut_a_running_job(
    prefork: Any, tmp_path: Path
) -> None:
    pool, outcomes = prefork(1), Outcomes()
    release = tmp_path / "release"
    running = job("mark-wait", str(tmp_path / "a"), str(release), T)
    pool.submit(running, outcomes)
    pid = marked_pid(tmp_path / "a")
    os.kill(pid, signal.SIGTERM)  # what systemd sends every process of the service at stop
    release.touch()
    o = outcomes.one(running.id)
    assert (o.kind, o.value, o.pid) == (OutcomeKind.FINISHED, "released", pid)
