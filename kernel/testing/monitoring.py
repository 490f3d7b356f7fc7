"""Interop suite for monitoring and remote control: Celery's real tools see kernel workers and
act on them, and kernel's tools see Celery's workers. Nothing is faked: real ``kernel worker``
and Celery worker processes, the ``celery`` command (inspect, events) and Flower 2, all on the
broker under test (``reference/celery-protocol.md`` §4 and §5).

A plugin runs it by giving the broker and the result backend::

    from kernel.testing.monitoring import MonitoringInteropSuite

    class TestMyBrokerMonitoring(MonitoringInteropSuite):
        @pytest.fixture
        def broker_url(self) -> str: ...
        @pytest.fixture
        def results_url(self, tmp_path) -> str: ...

Each test has queues and node names of its own (``w0@<queue>``), so other tests' workers on the
same broker may answer broadcasts too: assertions name their node. Needs celery>=5.3 and
flower>=2.0 (the plugins' ``test`` extra).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from kernel.testing.flower import Flower
from kernel.testing.servers import ServerProcess, unavailable
from kernel.testing.workers import CeleryWorkerProcess, WorkerProcess, Workers, _on_path

__all__ = ["MonitoringInteropSuite"]

#: the kernel worker's tasks (module ``montasks``, configured by the worker's environment).
KERNEL_TASKS = textwrap.dedent("""
    import time
    from kernel import App

    app = App("montasks")

    @app.task(name="mon.add")
    def add(x, y):
        return x + y

    @app.task(name="mon.sleep")
    def sleep(seconds):
        time.sleep(seconds)
        return seconds
""")

#: the Celery app (module ``proj``) of the celery command, of Flower and of the Celery worker:
#: the kernel worker's task names are registered so Flower's task endpoints accept them (they
#: never run here: the Celery worker consumes a queue of its own).
CELERY_PROJECT = textwrap.dedent("""
    from celery import Celery

    app = Celery("proj", broker={broker!r})
    app.conf.update({config!r})
    app.conf.worker_hijack_root_logger = False

    @app.task(name="mon.add")
    def add(x, y):
        raise AssertionError("a kernel task; the Celery worker never consumes its queue")

    @app.task(name="mon.sleep")
    def sleep(seconds):
        raise AssertionError("a kernel task; the Celery worker never consumes its queue")

    @app.task(name="mon.mul")
    def mul(x, y):
        return x * y
""")


class MonitoringInteropSuite:
    """Celery's inspect and events commands and Flower see and drive a kernel worker; a Celery
    worker and a kernel worker show side by side, in Flower and in kernel's own tools."""

    #: more configuration for the Celery app (``proj``): what the broker needs for Celery to
    #: share kernel's queues (RabbitMQ: ``task_queue_max_priority``).
    celery_config: ClassVar[dict[str, Any]] = {}

    # ------------------------------------------------------------------ fixtures

    @pytest.fixture
    def broker_url(self) -> str:
        pytest.fail("override the `broker_url` fixture: the broker under test")

    @pytest.fixture
    def results_url(self) -> str:
        pytest.fail("override the `results_url` fixture: a result backend kernel workers and "
                    "clients share")

    @pytest.fixture
    def queue(self) -> str:
        """The kernel worker's queue (override to delete it after the test)."""
        return f"mon-{uuid.uuid4().hex[:10]}"

    @pytest.fixture
    def celery_queue(self) -> str:
        """The Celery worker's queue (override to delete it after the test)."""
        return f"mon-celery-{uuid.uuid4().hex[:10]}"

    @pytest.fixture
    def project(self, tmp_path: Path, broker_url: str) -> Path:
        """A directory with the kernel tasks (``montasks``) and the Celery app (``proj``)."""
        for package, extra in (("celery", "celery>=5.3"), ("flower", "flower>=2.0")):
            try:
                __import__(package)
            except ImportError:
                unavailable(f"needs {extra} (the plugin's test extra)")
        (tmp_path / "montasks.py").write_text(KERNEL_TASKS)
        (tmp_path / "proj.py").write_text(CELERY_PROJECT.format(broker=broker_url,
                                                                config=self.celery_config))
        return tmp_path

    @pytest.fixture
    def workers(self, project: Path, broker_url: str, results_url: str,
                queue: str) -> Iterator[Workers]:
        with Workers("montasks:app", broker=broker_url, results=results_url, path=project,
                     logs=project, queue=queue) as workers:
            yield workers

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def kernel_worker(workers: Workers, pool: str = "prefork",
                      concurrency: int = 2) -> WorkerProcess:
        """A kernel worker sending task events (``-E``), ready."""
        return workers.start(pool=pool, concurrency=concurrency, args=["-E"],
                             loglevel="info").wait_ready()

    @staticmethod
    def celery(project: Path, broker_url: str, *args: str,
               timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """The real ``celery -A proj --broker URL ARGS`` command, run to its end."""
        return subprocess.run(
            [sys.executable, "-m", "celery", "-A", "proj", f"--broker={broker_url}", *args],
            cwd=project, capture_output=True, text=True, timeout=timeout,
            env={**os.environ, "PYTHONPATH": _on_path(project)})

    @staticmethod
    def flower(project: Path, broker_url: str) -> Flower:
        return Flower(broker_url, log=project / "flower.log", app="proj", path=project)

    @staticmethod
    def wait_flower_sees(flower: Flower, workers: Workers, *nodes: str) -> dict[str, Any]:
        """Wait until Flower lists `nodes` from their inspect replies (with stats) and holds
        them alive from their heartbeats (so it is subscribed to events); its workers."""
        def seen() -> dict[str, Any] | None:
            listed = flower.get_json("/api/workers?refresh=1")
            alive = flower.get_json("/api/workers?status=1")
            if all("stats" in listed.get(n, {}) and alive.get(n) for n in nodes):
                return dict(listed)
            return None

        listed = workers.wait(seen, 30, f"Flower to list {nodes} with stats and alive "
                                        f"(Flower's log: {flower.log})")
        assert listed is not None
        return listed

    @staticmethod
    def wait_flower_task(flower: Flower, workers: Workers, task_id: str,
                         state: str) -> dict[str, Any]:
        """Wait until Flower's ``/api/tasks`` shows the task in `state`; what it shows."""
        def shown() -> dict[str, Any] | None:
            task: dict[str, Any] | None = flower.get_json("/api/tasks").get(task_id)
            return task if task is not None and task["state"] == state else None

        task = workers.wait(shown, 20, f"Flower to show {task_id} {state} ({flower.log})")
        assert task is not None
        return task

    @staticmethod
    def wait_pool(workers: Workers, node: str, processes: int) -> dict[str, Any]:
        """Wait until `node` (asked with kernel's client) runs `processes` pool processes;
        the pool part of its stats."""
        def pool() -> dict[str, Any] | None:
            stats = workers.client.control.inspect([node], timeout=5).stats() or {}
            found: dict[str, Any] | None = stats.get(node, {}).get("pool")
            return found if found and len(found["processes"]) == processes else None

        found = workers.wait(pool, 30, f"{node} to run {processes} pool processes")
        assert found is not None
        return found

    # ------------------------------------------------------------------ the celery command

    def test_celery_inspect_ping_and_stats_list_the_kernel_worker(
            self, workers: Workers, project: Path, broker_url: str) -> None:
        worker = self.kernel_worker(workers)  # prefork: the parent answers for its children
        node = worker.nodename

        ping = self.celery(project, broker_url, "inspect", "ping", "--timeout", "10",
                           "-d", node)
        assert ping.returncode == 0, ping.stdout + ping.stderr
        assert re.search(rf"->\s+{re.escape(node)}: OK\s+pong", ping.stdout), ping.stdout

        stats = self.celery(project, broker_url, "inspect", "stats", "--timeout", "10",
                            "-d", node, "--json")
        assert stats.returncode == 0, stats.stdout + stats.stderr
        replies = json.loads(stats.stdout)
        assert list(replies) == [node], replies
        assert replies[node]["pool"]["max-concurrency"] == 2
        assert len(replies[node]["pool"]["processes"]) == 2, replies[node]["pool"]
        assert replies[node]["pid"] == worker.pid

    def test_celery_events_dump_shows_the_kernel_workers_task_events(
            self, workers: Workers, project: Path, broker_url: str) -> None:
        node = self.kernel_worker(workers).nodename
        dump = ServerProcess(
            [sys.executable, "-m", "celery", "-A", "proj", f"--broker={broker_url}", "events",
             "--dump"], log=project / "events.log", cwd=project, name="celery events --dump",
            env={"PYTHONUNBUFFERED": "1", "PYTHONPATH": _on_path(project)})
        with dump:
            # Events are not kept for late listeners: wait until it hears the worker's beat.
            workers.wait(lambda: re.search(rf"^{re.escape(node)} \[.*\] heartbeat:",
                                           dump.output(), re.M),
                         30, f"celery events --dump to show {node}'s heartbeat ({dump.log})")
            (task_id,) = workers.send("mon.add", (2, 3))
            workers.wait_succeeded([task_id], 30)

            def line(kind: str) -> str | None:
                found = re.search(rf"^{re.escape(node)} \[.*\] task {kind}: "
                                  rf"mon\.add\({task_id}\) .*$", dump.output(), re.M)
                return found[0] if found else None

            succeeded = workers.wait(lambda: line("succeeded"), 20,
                                     f"the dump to show task-succeeded of {task_id} "
                                     f"({dump.log})")
            received, started = line("received"), line("started")
        assert received is not None and "args=(2, 3)" in received, dump.output()
        assert started is not None, dump.output()
        assert succeeded is not None and "result=5" in succeeded, succeeded
        assert "runtime=" in succeeded, succeeded

    # ------------------------------------------------------------------ Flower

    def test_flower_lists_the_kernel_worker_its_tasks_and_its_page(
            self, workers: Workers, project: Path, broker_url: str) -> None:
        node = self.kernel_worker(workers).nodename
        with self.flower(project, broker_url) as flower:
            listed = self.wait_flower_sees(flower, workers, node)
            assert listed[node]["stats"]["pool"]["max-concurrency"] == 2
            assert "mon.add" in listed[node]["registered"]
            assert [q["name"] for q in listed[node]["active_queues"]] == [workers.queue]

            (task_id,) = workers.send("mon.add", (2, 3))
            workers.wait_succeeded([task_id], 30)
            task = self.wait_flower_task(flower, workers, task_id, "SUCCESS")
            assert task["name"] == "mon.add"
            assert task["args"] == "(2, 3)" and task["kwargs"] == "{}"
            assert task["result"] == "5"
            assert isinstance(task["runtime"], float) and task["runtime"] >= 0
            assert task["worker"] == node
            assert task["received"] and task["started"] and task["succeeded"]

            status, page = flower.get(f"/worker/{node}")
            assert status == 200, page[:500]
            assert node in page and workers.queue in page

    def test_flower_grows_and_shrinks_the_kernel_workers_pool(
            self, workers: Workers, project: Path, broker_url: str) -> None:
        node = self.kernel_worker(workers).nodename
        with self.flower(project, broker_url) as flower:
            self.wait_flower_sees(flower, workers, node)

            status, body = flower.post(f"/api/worker/pool/grow/{node}", {"n": 1})
            assert status == 200, body
            assert body == {"message": f"Growing '{node}' worker's pool by 1"}
            assert self.wait_pool(workers, node, 3)["max-concurrency"] == 3

            status, body = flower.post(f"/api/worker/pool/shrink/{node}", {"n": 1})
            assert status == 200, body
            assert body == {"message": f"Shrinking '{node}' worker's pool by 1"}
            assert self.wait_pool(workers, node, 2)["max-concurrency"] == 2
        # The resized pool still runs tasks.
        workers.wait_succeeded(workers.send("mon.add", (1, 1), n=4), 30)

    def test_flower_sets_a_rate_limit_on_the_kernel_worker(
            self, workers: Workers, project: Path, broker_url: str) -> None:
        node = self.kernel_worker(workers).nodename
        with self.flower(project, broker_url) as flower:
            self.wait_flower_sees(flower, workers, node)
            status, body = flower.post("/api/task/rate-limit/mon.add",
                                       {"workername": node, "ratelimit": "30/m"})
            assert status == 200, body
            assert "30/m" in body["message"], body  # the worker's own "ok" answer

            registered = workers.client.control.inspect([node], timeout=5).registered(
                "rate_limit") or {}
            assert registered.get(node) == ["mon.add [rate_limit=30/m]", "mon.sleep"], \
                registered

            # One task every 2 s now: three take 4 s at least, where they took milliseconds.
            ids = workers.send("mon.add", (1, 2), n=3)
            workers.wait_succeeded(ids, 60)
            tasks = [self.wait_flower_task(flower, workers, i, "SUCCESS") for i in ids]
        started = sorted(t["started"] for t in tasks)
        assert started[-1] - started[0] >= 3.0, f"30/m did not hold: started at {started}"

    @pytest.mark.parametrize("concurrency", [1, 2])
    def test_a_rate_limit_set_by_flower_holds_in_children_started_later(
            self, workers: Workers, project: Path, broker_url: str, concurrency: int) -> None:
        # Each child is replaced after one task: the later tasks run in children started
        # after the limit was set.
        node = workers.start(pool="prefork", concurrency=concurrency, loglevel="info",
                             args=["-E", "--max-tasks-per-child", "1"]).wait_ready().nodename
        with self.flower(project, broker_url) as flower:
            self.wait_flower_sees(flower, workers, node)
            status, body = flower.post("/api/task/rate-limit/mon.add",
                                       {"workername": node, "ratelimit": "30/m"})
            assert status == 200, body
            # One task every 2 s: three take 4 s at least.
            ids = workers.send("mon.add", (1, 2), n=3)
            workers.wait_succeeded(ids, 60)
            tasks = [self.wait_flower_task(flower, workers, i, "SUCCESS") for i in ids]
        started = sorted(t["started"] for t in tasks)
        assert started[-1] - started[0] >= 3.0, f"30/m did not hold: started at {started}"

    def test_flower_revokes_a_running_task_on_the_kernel_worker(
            self, workers: Workers, project: Path, broker_url: str) -> None:
        node = self.kernel_worker(workers).nodename
        with self.flower(project, broker_url) as flower:
            self.wait_flower_sees(flower, workers, node)
            (task_id,) = workers.send("mon.sleep", (60,))
            self.wait_flower_task(flower, workers, task_id, "STARTED")

            status, body = flower.post(f"/api/task/revoke/{task_id}", {"terminate": "true"})
            assert status == 200 and body == {"message": f"Revoked '{task_id}'"}, body

            result = workers.client.AsyncResult(task_id)
            workers.wait(lambda: result.state == "REVOKED", 20,
                         f"{task_id} to be recorded REVOKED")
            task = self.wait_flower_task(flower, workers, task_id, "REVOKED")
            assert task["worker"] == node
        # The worker replaced the child it stopped and runs tasks still.
        workers.wait_succeeded(workers.send("mon.add", (1, 1), n=2), 30)

    # ------------------------------------------------------------------ both kinds of worker

    def test_a_celery_and_a_kernel_worker_side_by_side(
            self, workers: Workers, project: Path, broker_url: str, celery_queue: str) -> None:
        from kernel.events import EventReceiver, State

        node = self.kernel_worker(workers, pool="threads").nodename
        state = State()
        celery_worker = CeleryWorkerProcess("proj", path=project, queue=celery_queue,
                                            log=project / "celery-worker.log", heartbeat=True)
        with EventReceiver(workers.client, {"*": state.event}) as receiver:
            with celery_worker, self.flower(project, broker_url) as flower:
                cnode = celery_worker.nodename
                listed = self.wait_flower_sees(flower, workers, node, cnode)
                assert listed[cnode]["stats"]["pid"] == celery_worker.pid
                assert listed[node]["stats"]["pid"] == workers.processes[0].pid

                pongs = workers.client.control.ping([cnode, node], timeout=10)
                assert {cnode: {"ok": "pong"}} in pongs and {node: {"ok": "pong"}} in pongs, \
                    pongs

                def celery_alive() -> bool:
                    for _ in receiver.events(timeout=0.5):
                        pass
                    info = state.workers.get(cnode)
                    return bool(info and info.alive() and info.sw_ident == "py-celery")

                workers.wait(celery_alive, 30,
                             f"kernel's EventReceiver to hear {cnode}'s heartbeat "
                             f"({celery_worker.log})")
                assert state.workers[cnode].pid == celery_worker.pid
                assert state.workers[node].alive()
