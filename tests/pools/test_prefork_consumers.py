"""The prefork pool's consumer children (`start_consumers`): each child runs its own jobs, and
the pool reports exactly the ones a child began and never ended — its death, its hard limit,
a termination — with the payload the child gave, then replaces the child."""

from __future__ import annotations

import os
import pickle
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest

from kernel.interfaces.pool import Job, Outcome, OutcomeKind
from kernel.std.pools.prefork.consumers import Slot
from kernel.std.pools.prefork.pool import HARD_GRACE, PreforkPool
from kernel.testing.pool import Outcomes
from tests.helpers import wait_for
from tests.pools.runners import ScriptedChild

pytestmark = pytest.mark.timeout(60)

T = 20.0  # bound for what should take well under a second


class Inbox:
    def __init__(self, path: Path, gone: list[list[tuple[Any, str, int]]]) -> None:
        self.path = path
        #: what each child that died held (`on_gone`).
        self.gone = gone

    def put(self, *payload: Any, name: str = "test.job", **options: Any) -> Job:
        job = Job(uuid.uuid4().hex, name, payload, **options)
        tmp = self.path / f"{job.id}.tmp"
        tmp.write_bytes(pickle.dumps(job))
        tmp.rename(self.path / f"{job.id}.job")
        return job

    def outcome(self, job: Job) -> str:
        path = self.path / f"{job.id}.outcome"
        return str(wait_for(lambda: path.exists() and path.read_text(), T, f"{job.id} done"))


@pytest.fixture
def consumers(tmp_path: Path) -> Iterator[Any]:
    pools: list[PreforkPool] = []

    def build(concurrency: int = 1, **limits: Any) -> tuple[PreforkPool, Inbox, Outcomes]:
        inbox = tmp_path / f"inbox{len(pools)}"
        inbox.mkdir()
        pool, orphans = PreforkPool(concurrency, **limits), Outcomes()
        gone: list[list[tuple[Any, str, int]]] = []
        pool.start_consumers(ScriptedChild(str(inbox)), orphans, gone.append)
        pools.append(pool)
        return pool, Inbox(inbox, gone), orphans

    yield build
    for pool in pools:
        pool.stop(wait=False)


def the_job(outcome: Outcome) -> Job:
    job = pickle.loads(outcome.extra["payload"])
    assert isinstance(job, Job)
    return job


def blocking(inbox: Inbox, tmp_path: Path, **options: Any) -> tuple[Job, int]:
    """A job that blocks until the test ends, once it runs, and the pid running it."""
    marker = tmp_path / "running"
    job = inbox.put("mark-wait", str(marker), str(tmp_path / "never"), T, **options)
    return job, int(wait_for(lambda: marker.exists() and marker.read_text(), T,
                             "the job to start"))


def children(pool: PreforkPool, n: int) -> list[int]:
    wait_for(lambda: len(pool.info()["processes"]) == n, T, f"{n} children")
    return list(pool.info()["processes"])


def test_a_child_killed_mid_job_is_reported_with_that_job_and_replaced(consumers: Any,
                                                                        tmp_path: Path) -> None:
    pool, inbox, orphans = consumers(1)
    done = inbox.put("echo", "before")
    assert inbox.outcome(done) == "finished before"
    victim, pid = blocking(inbox, tmp_path)

    os.kill(pid, signal.SIGKILL)
    lost = orphans.one(victim.id)
    assert (lost.kind, lost.pid) == (OutcomeKind.LOST, pid) and str(pid) in lost.value
    assert the_job(lost).payload == victim.payload, "the payload is the job the child ran"
    assert [o.job_id for o in orphans.all] == [victim.id], "a job the child ended is not"
    assert children(pool, 1) != [pid]


def test_what_a_killed_child_held_is_handed_back_after_its_job_is_reported(
        consumers: Any, tmp_path: Path) -> None:
    pool, inbox, orphans = consumers(1)
    victim, pid = blocking(inbox, tmp_path)
    waiting = [inbox.put("echo", n) for n in range(2)]
    wait_for(lambda: all((inbox.path / f"{j.id}.job.taken").exists() for j in waiting), T,
             "the child to take the waiting jobs too")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: inbox.gone, T, "what it held")
    assert orphans.one(victim.id).kind is OutcomeKind.LOST
    [held] = inbox.gone
    assert {tag for tag, _, _ in held} == {victim.id, *(j.id for j in waiting)}
    assert {(queue, count) for _, queue, count in held} == {("inbox", 1)}


def test_a_child_that_stops_by_itself_hands_nothing_back(consumers: Any) -> None:
    pool, inbox, orphans = consumers(1, max_tasks_per_child=1)
    [pid] = children(pool, 1)
    assert inbox.outcome(inbox.put("echo", 1)) == "finished 1"
    wait_for(lambda: children(pool, 1) != [pid], T, "a replacement")
    assert inbox.gone == [] and orphans.all == []


def test_a_child_that_dies_between_jobs_leaves_nothing_to_report(consumers: Any) -> None:
    pool, inbox, orphans = consumers(1)
    assert inbox.outcome(inbox.put("echo", 1)) == "finished 1"
    [pid] = children(pool, 1)
    # The outcome is written just before the child clears its slot: between jobs is after.
    [child] = pool._children
    wait_for(lambda: child.slot is not None and child.slot[0].read() is None, T,
             "the child between jobs")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: children(pool, 1) != [pid], T, "a replacement")
    assert orphans.all == []


def test_a_job_too_big_for_the_slot_is_reported_all_the_same(consumers: Any,
                                                              tmp_path: Path) -> None:
    pool, inbox, orphans = consumers(1)
    big, pid = blocking(inbox, tmp_path, name="x" * Slot.SIZE)
    os.kill(pid, signal.SIGKILL)
    assert the_job(orphans.one(big.id)).name == big.name


def test_a_job_past_its_hard_limit_is_settled_by_its_child_which_is_then_stopped(
        consumers: Any, tmp_path: Path) -> None:
    pool, inbox, orphans = consumers(1)
    [pid] = children(pool, 1)
    loop = inbox.put("spin", 600, hard_time_limit=0.5)
    assert inbox.outcome(loop) == "timeout hard time limit (0.5 s) exceeded"
    wait_for(lambda: not psutil.pid_exists(pid), T, "the child to be gone")
    assert (tmp_path / "inbox0" / "surrendered").exists(), "what it held went back first"
    assert orphans.all == [], "the child reported it and asked to be stopped: the pool did not"
    after = inbox.put("echo", "after")
    assert inbox.outcome(after) == "finished after", "a replacement serves"


def test_a_child_that_cannot_stop_its_job_is_killed_and_the_pool_reports_it(
        consumers: Any) -> None:
    pool, inbox, orphans = consumers(1)
    began = time.monotonic()
    hog = inbox.put("hog", hard_time_limit=0.5)  # holds the interpreter lock: nothing else runs
    timeout = orphans.one(hog.id)
    assert timeout.kind is OutcomeKind.TIMEOUT and "0.5" in timeout.value
    assert time.monotonic() - began >= 0.5 + HARD_GRACE
    assert the_job(timeout).id == hog.id
    wait_for(lambda: not psutil.pid_exists(timeout.pid), T, "the child to be gone")
    assert inbox.outcome(inbox.put("echo", "after")) == "finished after"


def test_terminate_settles_the_running_job_in_its_child_which_is_replaced(
        consumers: Any, tmp_path: Path) -> None:
    pool, inbox, orphans = consumers(1)
    victim, pid = blocking(inbox, tmp_path)
    (tmp_path / "inbox0" / "terminate").write_text(victim.id)
    assert inbox.outcome(victim) == "terminated terminated on request"
    wait_for(lambda: not psutil.pid_exists(pid), T, "the child to be gone")
    assert (tmp_path / "inbox0" / "surrendered").exists()
    assert children(pool, 1) != [pid] and orphans.all == []


def test_max_tasks_per_child_replaces_the_child_and_loses_nothing(consumers: Any) -> None:
    pool, inbox, orphans = consumers(1, max_tasks_per_child=2)
    pids = set()
    for n in range(5):
        pids.add(int(inbox.outcome(inbox.put("pid")).split()[1]))
        assert inbox.outcome(inbox.put("echo", n)) == f"finished {n}"
    assert len(pids) >= 3, f"a child runs at most 2 jobs, got pids {pids}"
    assert orphans.all == []


def test_a_warm_stop_lets_the_running_job_finish(consumers: Any, tmp_path: Path) -> None:
    pool, inbox, orphans = consumers(1)
    marker, release = tmp_path / "running", tmp_path / "release"
    running = inbox.put("mark-wait", str(marker), str(release), T)
    wait_for(marker.exists, T, "the job to start")
    release.touch()
    pool.stop(wait=True, timeout=T)
    assert inbox.outcome(running) == "finished released" and orphans.all == []


def test_a_cold_stop_gives_the_running_job_up_at_once(consumers: Any, tmp_path: Path) -> None:
    pool, inbox, orphans = consumers(1)
    running, pid = blocking(inbox, tmp_path)
    began = time.monotonic()
    pool.stop(wait=False)
    assert time.monotonic() - began < T
    # The child settled it itself (its consumer gives it back), so the pool does not.
    assert inbox.outcome(running).startswith("lost") and orphans.all == []
    assert not psutil.pid_exists(pid)
