"""Conformance suite for `kernel.interfaces.Pool`.

Subclass `PoolSuite` and give it a ``make_pool`` fixture returning a factory
``(concurrency, **limits) -> Pool`` (not started: the suite starts each pool with its own runner,
`kernel.testing.pool_runners.SuiteRunner`, and stops it)::

    class TestMyPool(PoolSuite):
        @pytest.fixture
        def make_pool(self):
            return MyPool

Tests are gated on the pool's declared `capabilities`; where one is not declared, the suite checks
that the pool says so honestly (``grow`` raises NotImplementedError, a limit it cannot enforce does
not break the job) instead of skipping. Hard limits and `terminate_job` are tested on async jobs
(``is_async=True``), so a pool that can only stop async jobs passes. Process pools must be able to
import this module in their children.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kernel.interfaces.pool import Job, Outcome, OutcomeKind, Pool
from kernel.testing.pool_runners import SuiteRunner
from kernel.testing.transport import wait_for

#: generous bound for anything that should take well under a second, on a loaded machine.
DEADLINE = 20.0

PoolMaker = Callable[..., Pool]


class Outcomes:
    """The `on_done` callback: records outcomes and fails on a job reported twice."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.all: list[Outcome] = []
        self.duplicates: list[str] = []

    def __call__(self, outcome: Outcome) -> None:
        with self._lock:
            if any(o.job_id == outcome.job_id for o in self.all):
                self.duplicates.append(outcome.job_id)
            self.all.append(outcome)

    def wait(self, n: int, timeout: float = DEADLINE) -> dict[str, Outcome]:
        """The first `n` outcomes by job id, once they arrived."""
        wait_for(lambda: len(self.all) >= n, timeout, f"{n} outcomes (got {len(self.all)})")
        assert not self.duplicates, (
            f"jobs {self.duplicates} were reported twice; hint: settle each job in one place "
            f"(a job finishing while stop() gives it up must still be reported once)"
        )
        return {o.job_id: o for o in self.all}

    def one(self, job_id: str, timeout: float = DEADLINE) -> Outcome:
        wait_for(lambda: any(o.job_id == job_id for o in self.all), timeout, f"job {job_id}")
        return next(o for o in self.all if o.job_id == job_id)


def _job(payload: tuple[Any, ...], **options: Any) -> Job:
    return Job(uuid.uuid4().hex, "suite.job", payload, **options)


def _run(pool: Pool, job: Job, outcomes: Outcomes, timeout: float = DEADLINE) -> Outcome:
    """Submit `job` and wait for its outcome."""
    pool.submit(job, outcomes)
    return outcomes.one(job.id, timeout)


class PoolSuite:
    @pytest.fixture
    def make_pool(self) -> PoolMaker:
        raise NotImplementedError(
            "subclass PoolSuite and define a make_pool fixture returning "
            "(concurrency, **limits) -> Pool, e.g. `return MyPool`"
        )

    @pytest.fixture
    def start_pool(self, make_pool: PoolMaker) -> Iterator[PoolMaker]:
        """Builds and starts pools with the suite's runner; stops them at the end of the test."""
        started: list[Pool] = []

        def build(concurrency: int = 2, **limits: Any) -> Pool:
            instance = make_pool(concurrency, **limits)
            instance.start(SuiteRunner())
            started.append(instance)
            return instance

        yield build
        for instance in started:
            instance.stop(wait=False)

    # ------------------------------------------------------------------ every pool

    def test_every_job_gets_exactly_one_outcome_with_the_runner_value(
        self, start_pool: PoolMaker
    ) -> None:
        p, outcomes = start_pool(2), Outcomes()
        jobs = [_job(("echo", i)) for i in range(20)]
        for job in jobs:
            p.submit(job, outcomes)
        got = outcomes.wait(len(jobs))
        for i, job in enumerate(jobs):
            o = got[job.id]
            assert (o.kind, o.value) == (OutcomeKind.FINISHED, i), (
                f"job {i}: {o}; hint: report Outcome(FINISHED, value=runner(job)) for every job"
            )
        wait_for(lambda: p.active == 0, DEADLINE, "active == 0 after every outcome")

    def test_info_names_the_implementation_and_concurrency(self, start_pool: PoolMaker) -> None:
        p = start_pool(3)
        info = p.info()
        assert info.get("implementation"), "hint: info() must name the implementation"
        assert info.get("max-concurrency") == p.concurrency >= 1, (
            f"info() = {info}, concurrency = {p.concurrency}; hint: 'max-concurrency' is the "
            f"number of jobs the pool runs at once (3 here, unless the pool has a fixed size)"
        )

    def test_submit_does_not_wait_for_the_job_and_active_counts_it(
        self, start_pool: PoolMaker, tmp_path: Path
    ) -> None:
        p, outcomes = start_pool(1), Outcomes()
        release = tmp_path / "release"
        jobs = [
            _job(("mark-wait", str(tmp_path / f"m{i}"), str(release), DEADLINE)) for i in (0, 1)
        ]
        for job in jobs:
            p.submit(job, outcomes)
        # Both submits returned while the first job is still blocked on the release file.
        assert p.active == 2, f"active = {p.active}; hint: count submitted, not yet reported jobs"
        wait_for((tmp_path / "m0").exists, DEADLINE, "the first job to start")
        release.touch()
        got = outcomes.wait(2)
        assert [got[j.id].value for j in jobs] == ["released", "released"], (
            f"{got}; hint: submit() must queue the job and return, never run it inline"
        )
        wait_for(lambda: p.active == 0, DEADLINE, "active == 0 after every outcome")

    def test_jobs_run_concurrently(self, start_pool: PoolMaker, tmp_path: Path) -> None:
        p, outcomes = start_pool(3), Outcomes()
        n = p.concurrency
        jobs = [_job(("barrier", str(tmp_path), n, DEADLINE)) for _ in range(n)]
        for job in jobs:
            p.submit(job, outcomes)
        got = outcomes.wait(n, DEADLINE + 10)
        assert all(got[j.id].value == "met" for j in jobs), (
            f"{list(got.values())}; hint: a pool of concurrency {n} must run {n} jobs at once"
        )

    def test_a_raising_runner_is_reported_finished_with_the_traceback(
        self, start_pool: PoolMaker
    ) -> None:
        p, outcomes = start_pool(1), Outcomes()
        bad, good = _job(("raise",)), _job(("echo", "after"))
        p.submit(bad, outcomes)
        p.submit(good, outcomes)
        got = outcomes.wait(2)
        o = got[bad.id]
        assert o.kind is OutcomeKind.FINISHED and o.value is None, (
            f"{o}; hint: catch what the runner raises and report FINISHED with value None"
        )
        assert "RuntimeError" in o.extra.get("error", ""), (
            f"{o}; hint: put the traceback text in extra['error']"
        )
        assert got[good.id].value == "after", "hint: the pool must keep serving after a failure"

    def test_isolation_is_declared_truthfully(self, start_pool: PoolMaker) -> None:
        p, outcomes = start_pool(1), Outcomes()
        ran_in = _run(p, _job(("pid",)), outcomes).value
        isolated = ran_in != os.getpid()
        assert isolated == p.capabilities.isolated, (
            f"job ran in pid {ran_in}, the test in {os.getpid()}; hint: declare "
            f"isolated=True exactly when jobs run in other processes"
        )

    def test_withdraw_takes_back_queued_jobs(self, start_pool: PoolMaker, tmp_path: Path) -> None:
        p, outcomes = start_pool(1), Outcomes()
        if not p.capabilities.queue_ahead:
            return  # the worker never queues ahead in this pool: withdraw is not needed
        marker = tmp_path / "running"
        running, queued = _job(("mark-sleep", str(marker), 0.5)), _job(("echo", "queued"))
        p.submit(running, outcomes)
        p.submit(queued, outcomes)
        wait_for(marker.exists, DEADLINE, "the first job to start")
        taken = p.withdraw([queued.id, "not-submitted"])
        assert [job.id for job in taken] == [queued.id], (
            f"{taken}; hint: withdraw returns the queued jobs asked for, not running ones"
        )
        assert p.active == 1, "hint: a withdrawn job no longer counts in active"
        assert outcomes.one(running.id).value == "slept"
        wait_for(lambda: p.active == 0, DEADLINE, "the pool to be idle")
        assert [o.job_id for o in outcomes.all] == [running.id], (
            "hint: a withdrawn job is never run nor reported"
        )

    def test_stop_with_wait_lets_running_jobs_finish(
        self, start_pool: PoolMaker, tmp_path: Path
    ) -> None:
        p, outcomes = start_pool(2), Outcomes()
        markers = [tmp_path / f"m{i}" for i in range(p.concurrency)]
        running = [_job(("mark-sleep", str(m), 0.5)) for m in markers]
        queued = _job(("echo", "queued"))
        for job in [*running, queued]:
            p.submit(job, outcomes)
        wait_for(lambda: all(m.exists() for m in markers), DEADLINE, "jobs to start")
        p.stop(wait=True, timeout=DEADLINE)
        got = outcomes.wait(len(running) + 1)
        for job in running:
            assert (got[job.id].kind, got[job.id].value) == (OutcomeKind.FINISHED, "slept"), (
                f"{got[job.id]}; hint: stop(wait=True) lets running jobs finish before stopping"
            )
        assert got[queued.id].kind in (OutcomeKind.LOST, OutcomeKind.FINISHED), (
            f"{got[queued.id]}; hint: a job never started is reported LOST (or run) at stop"
        )

    def test_stop_without_wait_reports_unfinished_jobs_lost(
        self, start_pool: PoolMaker, tmp_path: Path
    ) -> None:
        p, outcomes = start_pool(2), Outcomes()
        release = tmp_path / "release"
        markers = [tmp_path / f"m{i}" for i in range(p.concurrency)]
        running = [_job(("mark-wait", str(m), str(release), DEADLINE)) for m in markers]
        queued = _job(("echo", "queued"))
        for job in [*running, queued]:
            p.submit(job, outcomes)
        wait_for(lambda: all(m.exists() for m in markers), DEADLINE, "jobs to start")
        began = time.monotonic()
        p.stop(wait=False)
        assert time.monotonic() - began < DEADLINE / 2, "hint: stop(wait=False) must not wait"
        got = outcomes.wait(len(running) + 1)
        assert {o.kind for o in got.values()} == {OutcomeKind.LOST}, (
            f"{list(got.values())}; hint: stop(wait=False) reports every unfinished job LOST"
        )
        release.touch()
        if not p.capabilities.isolated:
            # Threads cannot be killed: once they finish, the pool must not report them again.
            done = [Path(f"{m}.done") for m in markers]
            wait_for(lambda: all(d.exists() for d in done), DEADLINE, "abandoned jobs to return")
        assert len(outcomes.wait(len(running) + 1)) == len(running) + 1, (
            "hint: a job reported LOST at stop must not be reported again when it returns"
        )

    # ------------------------------------------------------------------ soft time limit

    def test_soft_time_limit(self, start_pool: PoolMaker) -> None:
        p, outcomes = start_pool(1), Outcomes()
        if p.capabilities.soft_time_limit:
            o = _run(p, _job(("soft", DEADLINE), soft_time_limit=0.2), outcomes, DEADLINE + 5)
            assert o.value == "soft", (
                f"{o}; hint: raise SoftTimeLimitExceeded inside the running job at its soft limit"
            )
            assert _run(p, _job(("soft", 0.3)), outcomes).value == "no-soft-limit", (
                "hint: a soft limit must not outlive its job and hit the next one"
            )
        else:
            o = _run(p, _job(("soft", 0.3), soft_time_limit=0.05), outcomes)
            assert (o.kind, o.value) == (OutcomeKind.FINISHED, "no-soft-limit"), (
                f"{o}; hint: a pool without soft limits runs jobs that carry one to the end"
            )

    # ------------------------------------------------------------------ hard time limit

    def test_hard_time_limit(self, start_pool: PoolMaker) -> None:
        p, outcomes = start_pool(1), Outcomes()
        if p.capabilities.hard_time_limit:
            o = _run(p, _job(("spin", 60), hard_time_limit=0.3, is_async=True), outcomes)
            assert o.kind is OutcomeKind.TIMEOUT, (
                f"{o}; hint: stop a job past its hard limit and report TIMEOUT"
            )
            assert _run(p, _job(("echo", "after")), outcomes).value == "after", (
                "hint: after a hard limit the pool must keep serving (replace the killed child)"
            )
        else:
            o = _run(p, _job(("sleep", 0.3), hard_time_limit=0.05), outcomes)
            assert (o.kind, o.value) == (OutcomeKind.FINISHED, "slept"), (
                f"{o}; hint: a pool without hard limits runs jobs that carry one to the end"
            )

    # ------------------------------------------------------------------ terminate

    def test_terminate_job(self, start_pool: PoolMaker, tmp_path: Path) -> None:
        p, outcomes = start_pool(1), Outcomes()
        marker, release = tmp_path / "m", tmp_path / "release"
        job = _job(("mark-wait", str(marker), str(release), DEADLINE), is_async=True)
        p.submit(job, outcomes)
        wait_for(marker.exists, DEADLINE, "the job to start")
        assert p.terminate_job("no-such-job") is False, "hint: False for a job not in the pool"
        if p.capabilities.terminate:
            assert p.terminate_job(job.id) is True, "hint: True when the job was running here"
            o = outcomes.one(job.id)
            assert o.kind is OutcomeKind.TERMINATED, f"{o}; hint: report TERMINATED"
            assert _run(p, _job(("echo", "after")), outcomes).value == "after", (
                "hint: after terminate_job the pool must keep serving"
            )
        else:
            assert p.terminate_job(job.id) is False, (
                "hint: a pool that cannot terminate jobs returns False from terminate_job"
            )
            release.touch()
            assert outcomes.one(job.id).value == "released", (
                "hint: a terminate_job that returned False must leave the job running"
            )

    # ------------------------------------------------------------------ recycling

    def test_max_tasks_per_child(self, start_pool: PoolMaker) -> None:
        p, outcomes = start_pool(1, max_tasks_per_child=2), Outcomes()
        jobs = [_job(("pid",)) for _ in range(6)]
        for job in jobs:
            p.submit(job, outcomes)
        got = outcomes.wait(6)
        assert all(got[j.id].kind is OutcomeKind.FINISHED for j in jobs), (
            f"{list(got.values())}; hint: a child retiring after its last job reports it first"
        )
        pids = {got[j.id].value for j in jobs}
        if p.capabilities.recycle_children:
            assert len(pids) >= 3, (
                f"6 jobs ran in pids {pids}; hint: with max_tasks_per_child=2 a child exits "
                f"after 2 jobs and a new one replaces it"
            )

    def test_max_memory_per_child(self, start_pool: PoolMaker) -> None:
        probe, outcomes = start_pool(1), Outcomes()
        if not probe.capabilities.recycle_children:
            p = start_pool(1, max_memory_per_child=1)
            assert _run(p, _job(("echo", "small")), outcomes).value == "small", (
                "hint: a pool that does not recycle runs jobs whatever the memory limit"
            )
            return
        baseline = _run(probe, _job(("rss",)), outcomes).value
        limit = baseline + 48 * 1024
        p = start_pool(1, max_memory_per_child=limit)
        jobs = [_job(("pid",)), _job(("pid",)), _job(("alloc", 96)), _job(("pid",))]
        for job in jobs:
            p.submit(job, outcomes)
        got = outcomes.wait(1 + len(jobs))
        pids = [got[j.id].value for j in jobs]
        assert pids[0] == pids[1] == pids[2], (
            f"pids {pids} (limit {limit} KiB, a fresh child {baseline} KiB); hint: only a child "
            f"over max_memory_per_child after a job is replaced"
        )
        assert pids[3] != pids[2], (
            f"pids {pids}; hint: after a job leaves the child over max_memory_per_child KiB, "
            f"the child reports it, exits, and a new child takes the next job"
        )

    # ------------------------------------------------------------------ resize

    def test_grow_and_shrink(self, start_pool: PoolMaker, tmp_path: Path) -> None:
        p, outcomes = start_pool(1), Outcomes()
        if not p.capabilities.resize:
            with pytest.raises(NotImplementedError):
                p.grow(1)
            with pytest.raises(NotImplementedError):
                p.shrink(1)
            return
        p.grow(1)
        assert p.info()["max-concurrency"] == 2, "hint: grow(n) adds n to max-concurrency"
        jobs = [_job(("barrier", str(tmp_path), 2, DEADLINE)) for _ in range(2)]
        for job in jobs:
            p.submit(job, outcomes)
        got = outcomes.wait(2, DEADLINE + 10)
        assert all(got[j.id].value == "met" for j in jobs), (
            f"{list(got.values())}; hint: after grow(1) a pool of 1 runs 2 jobs at once"
        )
        p.shrink(1)
        assert p.info()["max-concurrency"] == 1, "hint: shrink(n) removes n from max-concurrency"
        after = _run(p, _job(("echo", "after")), outcomes)
        assert after.value == "after", "hint: the pool serves after shrink"
