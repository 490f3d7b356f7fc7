"""Celery 5 with django-celery-results and kernel on one Django database (PostgreSQL; Redis
carries the tasks): a Celery worker's rows read through kernel's AsyncResult and a kernel
worker's through Celery's, saved groups both ways, and chords (counted in ChordCounter) both
ways."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any, Callable

import pytest

from kernel import App, GroupResult, Signature, chord
from kernel.testing.interop import celery_client, celery_tasks_source, kernel_tasks
from kernel.testing.workers import CeleryWorkerProcess, running_worker

from conftest import REDIS_URL
from kernel_redis.testing import reachable

import celery  # noqa: E402
import celery.result  # noqa: E402
from django_celery_results.models import ChordCounter, TaskResult  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def broker() -> str:
    return reachable(REDIS_URL, "Redis, the interop tests' broker,")


@pytest.fixture
def queue(pg_alias: str) -> str:
    return f"django-interop-{uuid.uuid4().hex}"


@pytest.fixture
def celery_on_queue(broker: str, queue: str,
                    celery_worker: Callable[[str, str, str], CeleryWorkerProcess]
                    ) -> CeleryWorkerProcess:
    return celery_worker("ctasks", celery_tasks_source(broker, "django-db", queue, setup="""
        import os
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_test_settings")
        import django
        django.setup()
    """), queue)


@pytest.fixture
def kernel_worker(broker: str, queue: str) -> Iterator[App]:
    kapp = kernel_tasks(broker, "django-db", queue)
    with running_worker(kapp, concurrency=4):
        yield kapp
    kapp.close()


def test_a_celery_workers_results_read_through_kernel(
        broker: str, queue: str, celery_on_queue: CeleryWorkerProcess) -> None:
    kapp = App("kernel-client", broker=broker, results="django-db",
               config={"task_default_queue": queue})
    try:
        result = kapp.send_task("interop.add", (2, 3))
        assert result.get(timeout=40) == 5, f"see {celery_on_queue.log}"
        meta = kapp.backend.get_meta(result.id)
        assert meta is not None and meta["status"] == "SUCCESS"
        assert meta["name"] == "interop.add" and meta["worker"], \
            "the columns Celery's result_extended fills read back as the record's fields"
        assert meta["date_done"] is not None
        failed = kapp.send_task("interop.boom", ("gone",))
        with pytest.raises(KeyError):
            failed.get(timeout=40)
        assert "KeyError" in (failed.traceback or ""), "Celery's traceback column is read"
        assert kapp.AsyncResult(uuid.uuid4().hex).state == "UNKNOWN", \
            "no row: kernel tells a task never sent (UNKNOWN)"
    finally:
        kapp.close()


def test_a_kernel_workers_results_read_through_celery(
        broker: str, queue: str, kernel_worker: App) -> None:
    capp = celery_client(broker, "django-db", queue)
    try:
        result = capp.send_task("interop.add", (4, 5))
        assert result.get(timeout=30) == 9
        assert result.args == [4, 5] and result.kwargs == {}, \
            "kernel wrote django-celery-results' task_args and task_kwargs"
        assert result.date_done is not None
        row = TaskResult.objects.get(task_id=result.id)
        assert row.task_name == "interop.add" and row.worker, "what the admin lists"
        assert (row.content_type, row.content_encoding, row.result) == (
            "application/json", "utf-8", "9"), "the result column holds the JSON text"
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


def test_saved_groups_read_both_ways(broker: str, queue: str) -> None:
    kapp = App("kernel-client", broker=broker, results="django-db")
    capp = celery_client(broker, "django-db", queue)
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


def test_a_celery_chord_runs_on_kernel_workers(broker: str, queue: str,
                                               kernel_worker: App) -> None:
    capp = celery_client(broker, "django-db", queue)
    try:
        add, tsum = capp.signature("interop.add"), capp.signature("interop.tsum")
        result = celery.chord([add.clone((i, i)) for i in range(6)], tsum).apply_async()
        assert result.get(timeout=60) == 30, \
            "kernel's workers counted Celery's ChordCounter down and sent the body"
        assert not ChordCounter.objects.filter(group_id=result.parent.id).exists(), \
            "the counter is gone once the chord finished"
    finally:
        capp.close()


def test_a_kernel_chord_runs_on_a_celery_worker(broker: str, queue: str,
                                                celery_on_queue: CeleryWorkerProcess) -> None:
    kapp = App("kernel-client", broker=broker, results="django-db",
               config={"task_default_queue": queue})

    def sig(name: str, *args: Any) -> Signature:
        return Signature(f"interop.{name}", args, app=kapp)

    try:
        body = chord([sig("add", i, i) for i in range(6)], sig("tsum")).apply_async()
        assert body.get(timeout=60) == 30, \
            f"Celery counted the ChordCounter kernel's client wrote; see {celery_on_queue.log}"
    finally:
        kapp.close()


def test_a_chord_split_between_celery_and_kernel_workers(
        broker: str, queue: str, celery_on_queue: CeleryWorkerProcess,
        kernel_worker: App) -> None:
    kapp = App("kernel-client", broker=broker, results="django-db",
               config={"task_default_queue": queue})

    def sig(name: str, *args: Any) -> Signature:
        return Signature(f"interop.{name}", args, app=kapp)

    try:
        body = chord([sig("add", i, 1) for i in range(12)], sig("tsum")).apply_async()
        assert body.get(timeout=60) == sum(range(12)) + 12, (
            "whichever worker counts the last member, the body gets every member's value "
            f"(Celery's from their rows); see {celery_on_queue.log}")
    finally:
        kapp.close()
