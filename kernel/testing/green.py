"""Conformance tests of a green pool (kernel-gevent, kernel-eventlet), beyond `PoolSuite`.

`GreenPoolSuite` is `PoolSuite` plus what a green pool promises: a thousand slots at once, time
limits that reach a job that never yields (a CPU loop), limits and `terminate_job` on sync jobs,
async jobs on the pool's loop. It runs in the test process, which the plugin's conftest has
monkey-patched first (as ``kernel worker -P NAME`` does)::

    class TestGeventPool(GreenPoolSuite):
        @pytest.fixture
        def make_pool(self):
            return GeventPool

`GreenWorkerSuite` runs real ``kernel worker -P NAME`` processes on a broker (the ``broker``
fixture, a URL the subclass gives: SQLite, Redis, RabbitMQ) with the tasks of `TASKS`: the
process is patched before the app is imported and the banner says so, tasks that wait on
sockets, time limits, async tasks, revoking a running task and shutdowns work end to end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kernel import states
from kernel.testing.pool import DEADLINE, Outcomes, PoolMaker, PoolSuite, _job, _run
from kernel.interfaces.pool import OutcomeKind
from kernel.testing.transport import wait_for
from kernel.testing.workers import Workers

__all__ = ["TASKS", "GreenPoolSuite", "GreenWorkerSuite", "broker_url", "slow_server"]


class GreenPoolSuite(PoolSuite):
    def test_a_thousand_slots_wait_at_once(self, start_pool: PoolMaker) -> None:
        p, outcomes = start_pool(1000), Outcomes()
        jobs = [_job(("sleep", 0.5)) for _ in range(1000)]
        began = time.monotonic()
        for job in jobs:
            p.submit(job, outcomes)
        got = outcomes.wait(len(jobs), DEADLINE * 2)
        took = time.monotonic() - began
        assert all(got[j.id].value == "slept" for j in jobs)
        assert took < 10, (
            f"1,000 jobs sleeping 0.5 s took {took:.1f} s on 1,000 slots; hint: each job must "
            f"wait in a green thread of its own (is the process monkey-patched?)")

    def test_hard_limit_stops_a_job_that_never_yields(self, start_pool: PoolMaker) -> None:
        p, outcomes = start_pool(2), Outcomes()
        began = time.monotonic()
        o = _run(p, _job(("spin", 60), hard_time_limit=0.3), outcomes)
        assert o.kind is OutcomeKind.TIMEOUT, (
            f"{o}; hint: a CPU loop keeps the hub from running: raise in it from SIGALRM")
        assert time.monotonic() - began < 5
        assert _run(p, _job(("echo", "after")), outcomes).value == "after"

    def test_soft_limit_reaches_a_job_that_never_yields(self, start_pool: PoolMaker) -> None:
        p, outcomes = start_pool(2), Outcomes()
        o = _run(p, _job(("soft-spin", 60), soft_time_limit=0.2), outcomes)
        assert o.value == "soft", f"{o}; hint: raise SoftTimeLimitExceeded in the CPU loop"
        assert _run(p, _job(("soft-spin", 0.3)), outcomes).value == "no-soft-limit", (
            "hint: a soft limit must not outlive its job and hit the next one")

    def test_hard_limit_stops_a_waiting_sync_job(self, start_pool: PoolMaker) -> None:
        p, outcomes = start_pool(2), Outcomes()
        o = _run(p, _job(("sleep", 60), hard_time_limit=0.3), outcomes)
        assert o.kind is OutcomeKind.TIMEOUT, f"{o}; hint: throw into the waiting greenlet"

    def test_a_spinning_job_does_not_escape_its_limit_while_others_wait(
            self, start_pool: PoolMaker) -> None:
        p, outcomes = start_pool(4), Outcomes()
        sleepers = [_job(("sleep", 0.2)) for _ in range(3)]
        spinner = _job(("spin", 60), hard_time_limit=0.5)
        for job in [*sleepers, spinner]:
            p.submit(job, outcomes)
        got = outcomes.wait(4)
        assert got[spinner.id].kind is OutcomeKind.TIMEOUT
        assert all(got[j.id].value == "slept" for j in sleepers)

    def test_terminate_a_sync_job(self, start_pool: PoolMaker, tmp_path: Path) -> None:
        p, outcomes = start_pool(1), Outcomes()
        marker, release = tmp_path / "m", tmp_path / "release"
        job = _job(("mark-wait", str(marker), str(release), DEADLINE))
        p.submit(job, outcomes)
        wait_for(marker.exists, DEADLINE, "the job to start")
        assert p.terminate_job(job.id) is True
        assert outcomes.one(job.id).kind is OutcomeKind.TERMINATED
        wait_for(Path(f"{marker}.done").exists, DEADLINE, "the terminated job to unwind")
        assert _run(p, _job(("echo", "after")), outcomes).value == "after"

    def test_async_jobs_run_on_the_pools_event_loop(self, start_pool: PoolMaker) -> None:
        p, outcomes = start_pool(2), Outcomes()
        assert _run(p, _job(("where",), is_async=True), outcomes).value == "async"
        assert _run(p, _job(("where",)), outcomes).value == "sync"

    def test_info_says_how_the_process_was_patched(self, start_pool: PoolMaker) -> None:
        p = start_pool(2)
        assert "monkey-patched" in p.info()["patched"]


#: the tasks the worker tests run (written to ``green_tasks.py`` in the test's directory).
TASKS = '''
import asyncio, os, socket, time

from kernel import App
from kernel.errors import SoftTimeLimitExceeded

#: which socket class the app saw at import: a patched one if patching came first.
SOCKET_AT_IMPORT = socket.socket.__module__
app = App("green", config={"task_default_queue": os.environ["GREEN_QUEUE"]})


@app.task(name="green.add")
def add(x, y):
    return x + y


@app.task(name="green.socket_at_import")
def socket_at_import():
    return SOCKET_AT_IMPORT


@app.task(name="green.wait_on_socket")
def wait_on_socket(port):
    with socket.create_connection(("127.0.0.1", port)) as conn:
        return conn.recv(16).decode()


@app.task(name="green.spin", time_limit=1)
def spin(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return "spun"


@app.task(name="green.soft_spin", soft_time_limit=0.5)
def soft_spin(seconds):
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            pass
    except SoftTimeLimitExceeded:
        return "soft"
    return "no-soft-limit"


@app.task(name="green.mark_sleep")
def mark_sleep(directory, seconds):
    open(os.path.join(directory, os.urandom(8).hex()), "w").close()
    time.sleep(seconds)
    return "slept"


@app.task(name="green.async_add")
async def async_add(x, y):
    await asyncio.sleep(0.01)
    return x + y
'''


class GreenWorkerSuite:
    """End to end on real workers; the subclass names the pool (`pool`), and its conftest
    gives a ``broker`` fixture (a URL: `broker_url`, parametrized over the brokers). The result
    store is the broker's URL where that is one, else SQLite."""

    pool: str

    @pytest.fixture
    def results(self, broker: str, tmp_path: Path) -> str:
        if broker.startswith(("redis", "sqlite")):
            return broker
        return f"sqlite:///{tmp_path / 'results.db'}"

    @pytest.fixture
    def workers(self, broker: str, results: str, tmp_path: Path) -> Iterator[Workers]:
        (tmp_path / "green_tasks.py").write_text(TASKS)
        queue = f"green-{uuid.uuid4().hex[:10]}"
        with Workers("green_tasks:app", broker=broker, results=results, path=tmp_path,
                     logs=tmp_path, queue=queue, env={"GREEN_QUEUE": queue}) as running:
            yield running

    def test_worker_patches_before_the_app_and_says_so(self, workers: Workers) -> None:
        worker = workers.start(self.pool, 50, loglevel="info").wait_ready()
        assert "patched" in worker.output() and "monkey-patched before the app" in (
            worker.output().replace("\n", " ").replace("│", "")), worker.tail()
        [seen] = workers.send("green.socket_at_import")
        workers.wait_succeeded([seen], 30)
        module = workers.client.AsyncResult(seen).get(timeout=10)
        assert self.pool in module, (
            f"the app imported socket from {module}: the worker patched after the import")

    def test_patching_once_threads_exist_is_refused_with_a_sentence(
            self, tmp_path: Path) -> None:
        # The pool comes from the app's configuration, so the command line cannot patch
        # before the import, and the app starts a thread as it is imported.
        (tmp_path / "late_app.py").write_text(
            "import threading\nfrom kernel import App\n"
            "threading.Thread(target=threading.Event().wait, daemon=True).start()\n"
            f"app = App('late', config={{'worker_pool': {self.pool!r}}})\n")
        env = {**os.environ, "PYTHONPATH": str(tmp_path),
               "KERNEL_BROKER_URL": f"sqlite:///{tmp_path / 'broker.db'}"}
        done = subprocess.run([sys.executable, "-m", "kernel", "worker", "-A", "late_app:app"],
                              capture_output=True, text=True, env=env, timeout=60,
                              cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert f"{self.pool} must monkey-patch the process before any thread" in done.stderr
        assert "Traceback" not in done.stderr, done.stderr

    def test_tasks_wait_on_sockets_together(self, workers: Workers) -> None:
        with slow_server(0.2) as port:
            workers.start(self.pool, 100)
            began = time.monotonic()
            ids = workers.send("green.wait_on_socket", (port,), n=200)
            workers.wait_succeeded(ids, 60)
            took = time.monotonic() - began
        assert {workers.client.AsyncResult(i).get(timeout=5) for i in ids} == {"ok"}
        assert took < 20, f"200 waits of 0.2 s on 100 slots took {took:.1f} s"
        ids = workers.send("green.add", (2, 3), n=20) + workers.send("green.async_add", (2, 3))
        workers.wait_succeeded(ids, 30)
        assert workers.client.AsyncResult(ids[-1]).get(timeout=5) == 5

    def test_time_limits_reach_a_cpu_loop(self, workers: Workers) -> None:
        workers.start(self.pool, 10)
        [hard] = workers.send("green.spin", (60,))
        result = workers.client.AsyncResult(hard)
        wait_for(lambda: result.state in states.READY_STATES, 30, "the spinning task to end")
        assert result.state == states.FAILURE and "TimeLimitExceeded" in repr(result.result)
        # One after the other: a loop that holds the CPU holds every green thread, so beside
        # it the other task's soft limit (0.5 s) can pass before its body even starts.
        [soft] = workers.send("green.soft_spin", (60,))
        assert workers.client.AsyncResult(soft).get(timeout=30) == "soft"
        ok = workers.send("green.add", (1, 1))
        workers.wait_succeeded(ok, 30)

    def test_revoking_a_running_task_stops_it(self, workers: Workers, tmp_path: Path) -> None:
        marks = tmp_path / "marks"
        marks.mkdir()
        workers.start(self.pool, 10)
        [running] = workers.send("green.mark_sleep", (str(marks), 60))
        wait_for(lambda: os.listdir(marks), 30, "the task to start")
        result = workers.client.AsyncResult(running)
        result.revoke(terminate=True)
        wait_for(lambda: result.state == states.REVOKED, 30, "the running task to be revoked")
        ok = workers.send("green.add", (1, 1))
        workers.wait_succeeded(ok, 30)

    def test_cold_shutdown_gives_running_tasks_back(self, workers: Workers,
                                                    tmp_path: Path) -> None:
        marks = tmp_path / "marks"
        marks.mkdir()
        worker = workers.start(self.pool, 10, loglevel="info").wait_ready()
        ids = workers.send("green.mark_sleep", (str(marks), 60), n=3)
        wait_for(lambda: len(os.listdir(marks)) == 3, 30, "the tasks to start")
        os.kill(worker.pid, signal.SIGTERM)
        # Signals do not queue: the second, cold, once the first was taken.
        wait_for(lambda: "warm shutdown" in worker.output(), 30, "the warm shutdown to begin")
        os.kill(worker.pid, signal.SIGTERM)
        assert worker.wait(30) == 0, worker.tail()
        for name in os.listdir(marks):
            os.unlink(marks / name)
        # Given back, not lost nor acked: another worker gets them and runs them again.
        workers.start("threads", 3, args=["--shutdown-timeout", "0"])
        wait_for(lambda: len(os.listdir(marks)) == 3, 60, "the tasks given back to run again")
        assert not any(workers.client.AsyncResult(i).ready() for i in ids)

    def test_prefetch_holds_one_message_a_slot_and_the_budget(self, workers: Workers,
                                                              tmp_path: Path) -> None:
        marks = tmp_path / "marks"
        marks.mkdir()
        workers.send("green.mark_sleep", (str(marks), 30), n=1000)
        workers.start(self.pool, 100, args=["--prefetch-multiplier", "4"])
        wait_for(lambda: len(os.listdir(marks)) >= 100, 60, "100 tasks to start")
        transport = workers.client.transport
        left = transport.size(workers.queue)
        assert left >= 1000 - 200, (
            f"a worker of 100 green slots holds {1000 - left} messages: one a slot, and as "
            f"the budget allows at most one more (not 100 x prefetch multiplier 4)")


#: the brokers `broker_url` gives, and where they are looked for.
REDIS_URL = os.environ.get("KERNEL_REDIS_TEST_URL", "redis://127.0.0.1:6379/12")
AMQP_URL = os.environ.get("KERNEL_AMQP_TEST_URL", "amqp://guest:guest@127.0.0.1:5672//")


def broker_url(kind: str, directory: Path) -> str:
    """A broker URL of `kind` ("sqlite": a file in `directory`; "redis", "amqp": the servers
    of ``KERNEL_REDIS_TEST_URL`` and ``KERNEL_AMQP_TEST_URL``); a server that does not answer
    skips the test, or fails it under CI."""
    from urllib.parse import urlparse

    from kernel.testing.servers import listening, unavailable

    if kind == "sqlite":
        return f"sqlite:///{directory / 'broker.db'}"
    url = {"redis": REDIS_URL, "amqp": AMQP_URL}[kind]
    where = urlparse(url)
    if not listening(where.port or {"redis": 6379, "amqp": 5672}[kind],
                     where.hostname or "127.0.0.1")():
        unavailable(f"{kind} is not reachable at {where.hostname}:{where.port}; start it or "
                    f"set KERNEL_{kind.upper()}_TEST_URL")
    return url


@contextmanager
def slow_server(delay: float) -> Iterator[int]:
    """A TCP server on a free loopback port that answers "ok" `delay` seconds after each
    connection (thousands at once), in a process of its own, for the block: its port. What
    tasks that wait on a socket wait on (the worker tests, the benchmark's green rows)."""
    from kernel.testing.servers import free_port, listening

    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SLOW_SERVER, str(port), str(delay)])
    try:
        wait_for(listening(port), 10, f"the slow server on port {port}")
        yield port
    finally:
        process.kill()
        process.wait()


#: an asyncio server answering each connection after a delay: ``python -c SLOW_SERVER PORT S``.
SLOW_SERVER = '''
import asyncio, sys

async def main(port, delay):
    async def answer(reader, writer):
        await asyncio.sleep(delay)
        writer.write(b"ok")
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(answer, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()

asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
'''
