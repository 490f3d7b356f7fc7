"""Solo and threads pools beyond the conformance suite: where soft limits land, resizing."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from kernel.interfaces.pool import Job, OutcomeKind
from kernel.std.pools.solo import SoloPool
from kernel.std.pools.threads import ThreadPool
from kernel.testing.pool import Outcomes
from kernel.testing.pool_runners import SuiteRunner
from tests.helpers import wait_for

pytestmark = pytest.mark.timeout(60)

T = 20.0


def job(*payload: Any, **options: Any) -> Job:
    return Job(uuid.uuid4().hex, "test.job", payload, **options)


def test_soft_limit_lands_in_its_own_job_thread_only() -> None:
    pool, outcomes = ThreadPool(2), Outcomes()
    pool.start(SuiteRunner())
    try:
        limited = job("soft", T, soft_time_limit=0.2)
        free = job("soft", 1.0)
        pool.submit(free, outcomes)
        pool.submit(limited, outcomes)
        assert outcomes.one(limited.id).value == "soft"
        assert outcomes.one(free.id).value == "no-soft-limit"
    finally:
        pool.stop()


def test_many_soft_limits_that_never_fire_leave_no_stray_exception() -> None:
    pool, outcomes = ThreadPool(4), Outcomes()
    pool.start(SuiteRunner())
    try:
        jobs = [job("echo", i, soft_time_limit=0.05 + i / 1000) for i in range(300)]
        for j in jobs:
            pool.submit(j, outcomes)
        got = outcomes.wait(len(jobs))
        assert [got[j.id].value for j in jobs] == list(range(300))
        # Deadlines pass while the threads idle: nothing may be raised into them.
        later = job("soft", 0.5)
        pool.submit(later, outcomes)
        assert outcomes.one(later.id).value == "no-soft-limit"
    finally:
        pool.stop()


def test_solo_runs_jobs_off_the_callers_thread_one_at_a_time(tmp_path: Path) -> None:
    pool, outcomes = SoloPool(8), Outcomes()
    assert pool.concurrency == 1 and pool.info()["max-concurrency"] == 1
    pool.start(SuiteRunner())
    try:
        release = tmp_path / "release"
        first = job("mark-wait", str(tmp_path / "a"), str(release), T)
        second = job("mark-wait", str(tmp_path / "b"), str(release), T)
        pool.submit(first, outcomes)
        pool.submit(second, outcomes)
        wait_for((tmp_path / "a").exists, T, "the first job")
        assert not (tmp_path / "b").exists(), "solo runs one job at a time"
        release.touch()
        assert outcomes.one(second.id).value == "released"
    finally:
        pool.stop()


def test_threads_shrink_retires_threads_and_never_loses_a_job(tmp_path: Path) -> None:
    pool, outcomes = ThreadPool(3), Outcomes()
    pool.start(SuiteRunner())
    try:
        release = tmp_path / "release"
        busy = [job("mark-wait", str(tmp_path / f"m{i}"), str(release), T) for i in range(3)]
        for j in busy:
            pool.submit(j, outcomes)
        wait_for(lambda: all((tmp_path / f"m{i}").exists() for i in range(3)), T, "3 jobs")
        pool.shrink(2)
        release.touch()
        got = outcomes.wait(3)
        assert all(got[j.id].value == "released" for j in busy)
        wait_for(lambda: pool.info()["threads"] == 1, T, "one thread after shrink(2)")
        pool.grow(1)
        assert pool.info()["threads"] == 2
    finally:
        pool.stop()


def test_stop_with_a_timeout_gives_up_on_a_running_thread(tmp_path: Path) -> None:
    pool, outcomes = ThreadPool(1), Outcomes()
    pool.start(SuiteRunner())
    release = tmp_path / "release"
    stuck = job("mark-wait", str(tmp_path / "a"), str(release), T)
    pool.submit(stuck, outcomes)
    wait_for((tmp_path / "a").exists, T, "the job to start")
    pool.stop(wait=True, timeout=0.2)
    assert outcomes.one(stuck.id).kind is OutcomeKind.LOST
    release.touch()
    wait_for((tmp_path / "a.done").exists, T, "the abandoned job to return")
    wait_for(lambda: pool.info()["threads"] == 0, T, "the abandoned thread to exit")
    assert len(outcomes.all) == 1, "a job given up at stop is not reported again when it returns"


def test_bad_concurrency_is_refused_with_a_sentence() -> None:
    with pytest.raises(ValueError, match="positive integer"):
        ThreadPool(0)
    pool = ThreadPool(1)
    with pytest.raises(ValueError, match="at least one"):
        pool.shrink(1)
    with pytest.raises(RuntimeError, match="call start"):
        pool.submit(job("echo", 1), Outcomes())
