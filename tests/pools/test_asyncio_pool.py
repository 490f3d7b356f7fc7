"""The asyncio pool beyond the conformance suite: which jobs are awaited, what limits apply."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from kernel.interfaces.pool import Job, OutcomeKind
from kernel.std.pools.asyncio import AsyncioPool
from kernel.testing.pool import Outcomes
from kernel.testing.pool_runners import SuiteRunner
from tests.helpers import wait_for
from tests.pools.runners import sync_only

pytestmark = pytest.mark.timeout(60)

T = 20.0


def job(*payload: Any, **options: Any) -> Job:
    return Job(uuid.uuid4().hex, "test.job", payload, **options)


def started(runner: Any, concurrency: int = 2) -> AsyncioPool:
    pool = AsyncioPool(concurrency)
    pool.start(runner)
    return pool


def test_async_jobs_are_awaited_with_arun_and_sync_jobs_run_in_threads() -> None:
    pool, outcomes = started(SuiteRunner()), Outcomes()
    try:
        a, s = job("where", is_async=True), job("where")
        pool.submit(a, outcomes)
        pool.submit(s, outcomes)
        assert outcomes.one(a.id).value == "async"
        assert outcomes.one(s.id).value == "sync"
    finally:
        pool.stop()


def test_a_runner_without_arun_runs_async_jobs_as_calls() -> None:
    pool, outcomes = started(sync_only), Outcomes()
    try:
        a = job("where", is_async=True)
        pool.submit(a, outcomes)
        assert outcomes.one(a.id).value == "sync"
    finally:
        pool.stop()


def test_many_async_jobs_share_one_loop_up_to_the_concurrency(tmp_path: Path) -> None:
    pool, outcomes = started(SuiteRunner(), concurrency=50), Outcomes()
    try:
        jobs = [job("barrier", str(tmp_path), 50, T, is_async=True) for _ in range(50)]
        for j in jobs:
            pool.submit(j, outcomes)
        got = outcomes.wait(50, T + 10)
        assert all(got[j.id].value == "met" for j in jobs)
    finally:
        pool.stop()


def test_hard_limit_cancels_an_async_job_but_not_a_sync_one() -> None:
    pool, outcomes = started(SuiteRunner()), Outcomes()
    try:
        a = job("spin", 600, hard_time_limit=0.2, is_async=True)
        s = job("sleep", 0.3, hard_time_limit=0.05)
        pool.submit(a, outcomes)
        pool.submit(s, outcomes)
        assert outcomes.one(a.id).kind is OutcomeKind.TIMEOUT
        assert (outcomes.one(s.id).kind, outcomes.one(s.id).value) == (
            OutcomeKind.FINISHED,
            "slept",
        )
        wait_for(lambda: pool.active == 0 and not pool.info()["running"], T, "slots to free")
    finally:
        pool.stop()


def test_terminate_cannot_stop_a_sync_job(tmp_path: Path) -> None:
    pool, outcomes = started(SuiteRunner()), Outcomes()
    try:
        release = tmp_path / "release"
        s = job("mark-wait", str(tmp_path / "a"), str(release), T)
        pool.submit(s, outcomes)
        wait_for((tmp_path / "a").exists, T, "the job to start")
        assert pool.terminate_job(s.id) is False
        release.touch()
        assert outcomes.one(s.id).value == "released"
    finally:
        pool.stop()


def test_stop_with_a_timeout_cancels_what_still_runs(tmp_path: Path) -> None:
    pool, outcomes = started(SuiteRunner()), Outcomes()
    a = job("mark-wait", str(tmp_path / "a"), str(tmp_path / "never"), 600, is_async=True)
    pool.submit(a, outcomes)
    wait_for((tmp_path / "a").exists, T, "the job to start")
    pool.stop(wait=True, timeout=0.2)
    assert outcomes.one(a.id).kind is OutcomeKind.LOST
    wait_for((tmp_path / "a.done").exists, T, "the cancelled coroutine to unwind")
    assert len(outcomes.all) == 1
