"""Celery 5 and kernel on one database, PostgreSQL and MariaDB (Redis carries the tasks): a
Celery worker's rows in celery_taskmeta read through kernel's AsyncResult and a kernel worker's
through Celery's, saved groups both ways, and chords (``celery.chord_unlock``) both ways."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from kernel import App, GroupResult, Signature, chord
from kernel.testing.interop import celery_client, celery_tasks_source, kernel_tasks
from kernel.testing.workers import CeleryWorkerProcess, running_worker

from conftest import REDIS_URL
from kernel_redis.testing import reachable
from kernel_sqlalchemy.connection import sqlalchemy_url

if not os.environ.get("CI"):  # under CI a missing Celery is a failure, not a skip
    pytest.importorskip("celery", reason="interop tests need celery[sqlalchemy]")
import celery  # noqa: E402
import celery.result  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def broker() -> str:
    return reachable(REDIS_URL, "Redis, the interop tests' broker,")


@pytest.fixture(params=["postgresql", "mysql"])
def backend(request: pytest.FixtureRequest) -> str:
    """The database both sides keep results in."""
    return str(request.getfixturevalue("pg_url" if request.param == "postgresql"
                                       else "mysql_url"))


@pytest.fixture
def queue() -> str:
    return f"sql-interop-{uuid.uuid4().hex}"


@pytest.fixture
def celery_on_queue(broker: str, backend: str, queue: str,
                    celery_worker: Callable[[str, str, str], CeleryWorkerProcess]
                    ) -> CeleryWorkerProcess:
    return celery_worker("ctasks", celery_tasks_source(broker, backend, queue), queue)


@pytest.fixture
def kernel_worker(broker: str, backend: str, queue: str) -> Iterator[App]:
    kapp = kernel_tasks(broker, backend, queue)
    with running_worker(kapp, concurrency=4):
        yield kapp
    kapp.close()


def test_a_celery_workers_results_read_through_kernel(
        broker: str, backend: str, queue: str, celery_on_queue: CeleryWorkerProcess) -> None:
    kapp = App("kernel-client", broker=broker, results=backend,
               config={"task_default_queue": queue})
    try:
        result = kapp.send_task("interop.add", (2, 3))
        assert result.get(timeout=40) == 5, f"see {celery_on_queue.log}"
        meta = kapp.backend.get_meta(result.id)
        assert meta is not None and meta["status"] == "SUCCESS"
        assert meta["name"] == "interop.add" and meta["args"] == [2, 3], \
            "result_extended columns Celery wrote read back as the record's fields"
        assert meta["date_done"] is not None
        failed = kapp.send_task("interop.boom", ("gone",))
        with pytest.raises(KeyError):
            failed.get(timeout=40)
        assert "KeyError" in (failed.traceback or ""), "Celery's traceback column is read"
        unknown = kapp.AsyncResult(uuid.uuid4().hex)
        assert unknown.state == "UNKNOWN", "no row: kernel tells a task never sent (UNKNOWN)"
    finally:
        kapp.close()


def test_a_kernel_workers_results_read_through_celery(
        broker: str, backend: str, queue: str, kernel_worker: App) -> None:
    capp = celery_client(broker, backend, queue)
    try:
        result = capp.send_task("interop.add", (4, 5))
        assert result.get(timeout=30) == 9
        assert result.name == "interop.add" and result.args == [4, 5], \
            "kernel wrote Celery's extended columns"
        assert result.date_done is not None
        failed = capp.send_task("interop.boom", ("lost",))
        with pytest.raises(KeyError):
            failed.get(timeout=30)
        assert failed.state == "FAILURE" and "KeyError" in failed.traceback
        # Sent by kernel, read by Celery: the PENDING row a kernel client writes on send.
        pending = kernel_worker.send_task("interop.nowhere", (), queue=queue + "-idle")
        assert capp.AsyncResult(pending.id).state == "PENDING"
        pending.forget()
    finally:
        capp.close()


def test_saved_groups_read_both_ways(broker: str, backend: str, queue: str) -> None:
    kapp = App("kernel-client", broker=broker, results=backend)
    capp = celery_client(broker, backend, queue)
    try:
        ids = [uuid.uuid4().hex for _ in range(3)]
        mine = GroupResult(uuid.uuid4().hex, [kapp.AsyncResult(i) for i in ids], app=kapp)
        mine.save()
        theirs = celery.result.GroupResult.restore(mine.id, app=capp)
        assert theirs is not None and [r.id for r in theirs.results] == ids, \
            "Celery restores a group kernel saved"
        saved = celery.result.GroupResult(uuid.uuid4().hex, [capp.AsyncResult(i) for i in ids],
                                          app=capp)
        saved.save()
        back = GroupResult.restore(saved.id, kapp)
        assert back is not None and [r.id for r in back.results] == ids, \
            "kernel restores a group Celery saved"
    finally:
        kapp.close()
        capp.close()


def test_a_celery_chord_runs_on_kernel_workers(broker: str, backend: str, queue: str,
                                               kernel_worker: App) -> None:
    capp = celery_client(broker, backend, queue)
    try:
        add, tsum = capp.signature("interop.add"), capp.signature("interop.tsum")
        result = celery.chord([add.clone((i, i)) for i in range(6)], tsum).apply_async()
        assert result.get(timeout=60) == 30, \
            "kernel's celery.chord_unlock read the header through Celery's tables"
    finally:
        capp.close()


def test_a_kernel_chord_runs_on_a_celery_worker(broker: str, backend: str, queue: str,
                                                celery_on_queue: CeleryWorkerProcess) -> None:
    kapp = App("kernel-client", broker=broker, results=backend,
               config={"task_default_queue": queue, "result_chord_retry_interval": 0.2})

    def sig(name: str, *args: Any) -> Signature:
        return Signature(f"interop.{name}", args, app=kapp)

    try:
        body = chord([sig("add", i, i) for i in range(6)], sig("tsum")).apply_async()
        assert body.get(timeout=60) == 30, \
            f"Celery's chord_unlock ran kernel's chord; see {celery_on_queue.log}"
    finally:
        kapp.close()


def test_tables_celery_created(broker: str, backend: str) -> None:
    """Celery creates its tables and both sides use them. Names of their own, and on
    PostgreSQL a schema of their own too: Celery names its date_done index after the default
    table, whatever the table's name, so a second set of its tables in one schema fails."""
    suffix = uuid.uuid4().hex[:8]
    names = {"task": f"ctask_{suffix}", "group": f"cgroup_{suffix}"}
    schemas: dict[str, str] = {}
    engine = sa.create_engine(sqlalchemy_url(backend))
    if engine.dialect.name == "postgresql":
        schemas = {"task": f"s_{suffix}", "group": f"s_{suffix}"}
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA s_{suffix}"))
    capp = celery.Celery("celery-side", broker=broker, backend=backend)
    capp.conf.database_table_names = names
    capp.conf.database_table_schemas = schemas
    kapp = App("kernel-side", broker="memory://", results=backend,
               config={"database_table_names": {**names, "kv": f"ckv_{suffix}"},
                       "database_table_schemas": schemas, "result_extended": True})
    try:
        celery_id, kernel_id = uuid.uuid4().hex, uuid.uuid4().hex
        capp.backend.store_result(celery_id, {"n": 1}, "SUCCESS")  # creates Celery's tables
        assert kapp.AsyncResult(celery_id).get(timeout=5) == {"n": 1}
        kapp.backend.store_result(kernel_id, "SUCCESS", [1, 2], extra={"name": "x.y"})
        assert capp.AsyncResult(kernel_id).get(timeout=5) == [1, 2]
    finally:
        kapp.close()
        capp.close()
        with engine.begin() as conn:
            if schemas:
                conn.execute(sa.text(f"DROP SCHEMA s_{suffix} CASCADE"))
            else:
                for name in (*names.values(), f"ckv_{suffix}"):
                    conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
        engine.dispose()
