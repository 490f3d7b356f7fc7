"""Connections: a client per process (a forked child never uses its parent's), and a server
restart under a running kernel worker (prefork) that loses no result and fails no task."""

from __future__ import annotations

import multiprocessing
import os
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from pymongo import errors

from kernel.testing.workers import Workers
from kernel_mongodb.results import MongoResultStore
from kernel_mongodb.testing import NxServer

pytestmark = pytest.mark.integration

Make = Callable[..., MongoResultStore]


def _child(store: MongoResultStore, key: str) -> None:
    store.set([(key, str(os.getpid()).encode())], 30)
    os._exit(0 if store.get(key) == str(os.getpid()).encode() else 1)


def test_a_forked_child_uses_a_client_of_its_own(mongo_url: str, make_store: Make) -> None:
    store = make_store(mongo_url)
    store.set([("parent", b"p")], 30)
    parent_client = store._db.client()
    process = multiprocessing.get_context("fork").Process(
        target=_child, args=(store, f"child-{uuid.uuid4().hex}"))
    process.start()
    process.join(30)
    assert process.exitcode == 0, "the child stored and read through a client of its own"
    assert store._db.client() is parent_client and store.get("parent") == b"p", \
        "the parent's client survived the child"


def test_reads_and_writes_go_on_after_a_server_restart(tmp_path: Path, make_store: Make) -> None:
    with NxServer(tmp_path) as server:
        store = make_store(server.url(), broker_connection_timeout=10)
        store.set([("before", b"1")], None)
        for _ in range(3):
            # Each pooled connection is dead now: the write meets one first, and is sent again
            # on a fresh one.
            server.restart()
            store.set([("after", b"2")], None)
            assert store.get("before") == b"1", "same data directory: the value is still there"
            server.restart()
            assert store.incr(f"c-{uuid.uuid4().hex}") == 1, \
                "a counter reads first (reads are sent again), then counts on a live connection"


TASKS = textwrap.dedent("""
    import time
    from kernel import App
    app = App("restart")

    @app.task(name="restart.double")
    def double(x):
        time.sleep(0.02)
        return 2 * x
""")


@pytest.mark.timeout(180)
def test_a_running_worker_loses_no_result_when_the_server_restarts(
        tmp_path: Path, redis_url: str) -> None:
    """nx-27017 stopped and started again on its port and data twice while a prefork worker
    stores results: every task succeeds, and its result is there."""
    (tmp_path / "restart_tasks.py").write_text(TASKS)
    with NxServer(tmp_path / "nx") as server:
        url = server.url("restart")
        with Workers("restart_tasks:app", broker=redis_url, results=url, path=tmp_path,
                     logs=tmp_path, client_config={"broker_connection_timeout": 10}) as workers:
            workers.start(pool="prefork", concurrency=2, loglevel="info")
            with server.client() as client:
                done = client["restart"]["celery_taskmeta"]

                def finished(at_least: int) -> Callable[[], bool]:
                    def enough() -> bool:
                        try:
                            return done.count_documents({"status": "SUCCESS"}) >= at_least
                        except errors.AutoReconnect:  # the test's client, while it restarts
                            return False
                    return enough

                ids = workers.send("restart.double", (21,), n=240)
                workers.wait(finished(40), 60, "40 tasks to finish before the restart")
                server.restart()
                workers.wait(finished(120), 60, "120 tasks to finish before the 2nd restart")
                server.restart()
            workers.wait_succeeded(ids, timeout=90)
            assert all(workers.client.AsyncResult(i).get(timeout=5) == 42 for i in ids)
            failures = [f for w in workers.processes for f in w.failures()]
            assert not failures, f"the worker logged errors: {failures[:2]}"
