"""Celery 5 (its DynamoDB backend, on boto3) and kernel on one table of moto's server (Redis
carries the tasks): a Celery worker's items read through kernel's AsyncResult and a kernel
worker's through Celery's, saved groups both ways, chords counted in Celery's
``chord-unlock-<gid>`` item both ways, and Celery's ``ttl_seconds`` items read by kernel."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest

from kernel import App, GroupResult, Signature, chord
from kernel.testing.interop import celery_client, celery_tasks_source, kernel_tasks
from kernel.testing.workers import CeleryWorkerProcess, running_worker
from kernel_dynamodb.store import item_id
from kernel_dynamodb.testing import MotoServer

if not os.environ.get("CI"):  # under CI a missing Celery is a failure, not a skip
    pytest.importorskip("celery", reason="interop tests need celery[dynamodb]")
import celery  # noqa: E402
import celery.exceptions  # noqa: E402
import celery.result  # noqa: E402

pytestmark = pytest.mark.timeout(150)


@pytest.fixture
def queue() -> str:
    return f"dynamodb-interop-{uuid.uuid4().hex}"


@pytest.fixture
def celery_on_queue(redis_url: str, dynamodb_url: str, queue: str,
                    celery_worker: Callable[[str, str, str], CeleryWorkerProcess]
                    ) -> CeleryWorkerProcess:
    return celery_worker("ctasks", celery_tasks_source(redis_url, dynamodb_url, queue), queue)


@pytest.fixture
def kernel_worker(redis_url: str, dynamodb_url: str, queue: str) -> Iterator[App]:
    kapp = kernel_tasks(redis_url, dynamodb_url, queue)
    with running_worker(kapp, concurrency=4):
        yield kapp
    kapp.close()


def test_a_celery_workers_results_read_through_kernel(
        redis_url: str, dynamodb_url: str, queue: str,
        celery_on_queue: CeleryWorkerProcess) -> None:
    kapp = App("kernel-client", broker=redis_url, results=dynamodb_url,
               config={"task_default_queue": queue})
    try:
        result = kapp.send_task("interop.add", (2, 3))
        assert result.get(timeout=40) == 5, f"see {celery_on_queue.log}"
        meta = kapp.backend.get_meta(result.id)
        assert meta is not None and meta["status"] == "SUCCESS"
        assert meta["name"] == "interop.add" and meta["args"] == [2, 3], \
            "result_extended fields Celery wrote read back as the record's"
        failed = kapp.send_task("interop.boom", ("gone",))
        with pytest.raises(KeyError):
            failed.get(timeout=40)
        assert "KeyError" in (failed.traceback or ""), "Celery's traceback field is read"
        assert kapp.AsyncResult(uuid.uuid4().hex).state == "UNKNOWN", \
            "no item: kernel tells a task never sent"
    finally:
        kapp.close()


def test_a_kernel_workers_results_read_through_celery(
        redis_url: str, dynamodb_url: str, queue: str, kernel_worker: App) -> None:
    capp = celery_client(redis_url, dynamodb_url, queue)
    try:
        result = capp.send_task("interop.add", (4, 5))
        assert result.get(timeout=30) == 9
        assert result.name == "interop.add" and result.args == [4, 5], \
            "kernel wrote Celery's extended fields"
        assert isinstance(result.date_done, datetime)
        failed = capp.send_task("interop.boom", ("lost",))
        with pytest.raises(KeyError):
            failed.get(timeout=30)
        assert failed.state == "FAILURE" and "KeyError" in failed.traceback
        # Sent by kernel, read by Celery: the PENDING item a kernel client writes on send.
        pending = kernel_worker.send_task("interop.nowhere", (), queue=queue + "-idle")
        assert capp.AsyncResult(pending.id).state == "PENDING"
        pending.forget()
    finally:
        capp.close()


def test_saved_groups_read_both_ways(redis_url: str, dynamodb_url: str, queue: str) -> None:
    kapp = App("kernel-client", broker=redis_url, results=dynamodb_url)
    capp = celery_client(redis_url, dynamodb_url, queue)
    try:
        ids = [uuid.uuid4().hex for _ in range(3)]
        mine = GroupResult(uuid.uuid4().hex, [kapp.AsyncResult(i) for i in ids], app=kapp)
        mine.save()
        saved = celery.result.GroupResult(uuid.uuid4().hex, [capp.AsyncResult(i) for i in ids],
                                          app=capp)
        saved.save()
        theirs = celery.result.GroupResult.restore(mine.id, app=capp)
        assert [r.id for r in theirs.results] == ids, "Celery restores a group kernel saved"
        back = GroupResult.restore(saved.id, kapp)
        assert back is not None and [r.id for r in back.results] == ids, \
            "kernel restores a group Celery saved"
        capp.backend.delete_group(mine.id)
        assert GroupResult.restore(mine.id, kapp) is None
    finally:
        kapp.close()
        capp.close()


def test_a_celery_chord_runs_on_kernel_workers(redis_url: str, dynamodb_url: str, queue: str,
                                               kernel_worker: App) -> None:
    capp = celery_client(redis_url, dynamodb_url, queue)
    try:
        add, tsum = capp.signature("interop.add"), capp.signature("interop.tsum")
        result = celery.chord([add.clone((i, i)) for i in range(6)], tsum).apply_async()
        assert result.get(timeout=60) == 30, \
            "kernel counted in Celery's chord-unlock item and read the header it saved"
        failing = celery.chord([add.clone((1, 1)), capp.signature("interop.boom", ("x",))],
                               tsum).apply_async()
        # Celery's get raises the failed member's error (a parent's) or the body's ChordError.
        with pytest.raises((KeyError, celery.exceptions.ChordError)):
            failing.get(timeout=60)
        meta: dict[str, Any] = {}
        deadline = time.monotonic() + 30
        while meta.get("status") != "FAILURE" and time.monotonic() < deadline:
            meta = capp.backend.get_task_meta(failing.id)
            time.sleep(0.1)
        assert meta.get("status") == "FAILURE" and "Dependency" in str(meta.get("result")), \
            f"kernel recorded the body as failed for its failed member: {meta}"
    finally:
        capp.close()


def test_a_kernel_chord_runs_on_a_celery_worker(redis_url: str, dynamodb_url: str, queue: str,
                                                celery_on_queue: CeleryWorkerProcess) -> None:
    kapp = App("kernel-client", broker=redis_url, results=dynamodb_url,
               config={"task_default_queue": queue})

    def sig(name: str, *args: Any) -> Signature:
        return Signature(f"interop.{name}", args, app=kapp)

    try:
        body = chord([sig("add", i, i) for i in range(6)], sig("tsum")).apply_async()
        assert body.get(timeout=60) == 30, \
            f"Celery's worker counted kernel's chord-unlock item; see {celery_on_queue.log}"
    finally:
        kapp.close()


def test_one_chord_counted_by_celery_and_kernel_workers(
        redis_url: str, dynamodb_url: str, queue: str, kernel_worker: App,
        celery_worker: Callable[[str, str, str], CeleryWorkerProcess]) -> None:
    """Both workers consume one queue: whichever counts the last member sends the body,
    with the values of members the other side ran."""
    worker = celery_worker("ctasks", celery_tasks_source(redis_url, dynamodb_url, queue), queue)
    capp = celery_client(redis_url, dynamodb_url, queue)
    try:
        add, tsum = capp.signature("interop.add"), capp.signature("interop.tsum")
        for n in range(3):
            result = celery.chord([add.clone((i, i)) for i in range(10)], tsum).apply_async()
            assert result.get(timeout=60) == 90, f"round {n}; see {worker.log}"
    finally:
        capp.close()


def test_celerys_ttl_seconds_items_read_through_kernel(moto: MotoServer, redis_url: str,
                                                       queue: str) -> None:
    url = moto.url(f"ttl-{uuid.uuid4().hex[:8]}", "ttl_seconds=2")
    capp = celery_client(redis_url, url, queue)
    kapp = App("kernel-client", broker="memory://", results=url)
    try:
        task_id = uuid.uuid4().hex
        capp.backend.store_result(task_id, 7, "SUCCESS")
        assert kapp.AsyncResult(task_id).get(timeout=5) == 7
        table = url.rsplit("/", 1)[1].split("?")[0]
        key = {"id": {"S": item_id(f"celery-task-meta-{task_id}")}}
        item = moto.client().get_item(TableName=table, Key=key)["Item"]  # type: ignore[attr-defined]
        assert int(item["ttl"]["N"]) <= time.time() + 3, "Celery wrote its ttl attribute"
        deadline = time.monotonic() + 10
        while kapp.AsyncResult(task_id).state != "UNKNOWN" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert kapp.AsyncResult(task_id).state == "UNKNOWN", \
            "past its ttl, the item reads as absent, though DynamoDB has not deleted it yet"
        kapp.backend.store_result(task_id, "SUCCESS", 8)
        mine = moto.client().get_item(TableName=table, Key=key)["Item"]  # type: ignore[attr-defined]
        assert int(mine["ttl"]["N"]) <= time.time() + 3, \
            "kernel follows the URL's ttl_seconds, as Celery does"
        assert capp.AsyncResult(task_id).get(timeout=5) == 8
    finally:
        kapp.close()
        capp.close()
