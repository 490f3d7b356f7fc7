"""Celery 5 and kernel on one MongoDB database (nx-27017; Redis carries the tasks): a Celery
worker's documents in celery_taskmeta read through kernel's AsyncResult and a kernel worker's
through Celery's, saved groups both ways, chords (``celery.chord_unlock``) both ways, and
Celery's ``backend_cleanup``; and the one thing nx-27017 cannot do for either side."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from kernel import App, GroupResult, Signature, chord
from kernel.plugin import ConfigurationError
from kernel.testing.interop import celery_client, celery_tasks_source, kernel_tasks
from kernel.testing.workers import CeleryWorkerProcess, running_worker
from kernel_mongodb.testing import NxServer

if not os.environ.get("CI"):  # under CI a missing Celery is a failure, not a skip
    pytest.importorskip("celery", reason="interop tests need celery[mongodb]")
import celery  # noqa: E402
import celery.result  # noqa: E402
from pymongo.errors import WriteError  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def queue() -> str:
    return f"mongo-interop-{uuid.uuid4().hex}"


@pytest.fixture
def celery_on_queue(redis_url: str, mongo_url: str, queue: str,
                    celery_worker: Callable[[str, str, str], CeleryWorkerProcess]
                    ) -> CeleryWorkerProcess:
    return celery_worker("ctasks", celery_tasks_source(redis_url, mongo_url, queue), queue)


@pytest.fixture
def kernel_worker(redis_url: str, mongo_url: str, queue: str) -> Iterator[App]:
    kapp = kernel_tasks(redis_url, mongo_url, queue)
    with running_worker(kapp, concurrency=4):
        yield kapp
    kapp.close()


def test_a_celery_workers_results_read_through_kernel(
        redis_url: str, mongo_url: str, queue: str,
        celery_on_queue: CeleryWorkerProcess) -> None:
    kapp = App("kernel-client", broker=redis_url, results=mongo_url,
               config={"task_default_queue": queue})
    try:
        result = kapp.send_task("interop.add", (2, 3))
        assert result.get(timeout=40) == 5, f"see {celery_on_queue.log}"
        meta = kapp.backend.get_meta(result.id)
        assert meta is not None and meta["status"] == "SUCCESS"
        assert meta["name"] == "interop.add" and meta["args"] == [2, 3], \
            "result_extended fields Celery wrote read back as the record's"
        assert meta["date_done"] is not None and meta["worker"]
        failed = kapp.send_task("interop.boom", ("gone",))
        with pytest.raises(KeyError):
            failed.get(timeout=40)
        assert "KeyError" in (failed.traceback or ""), "Celery's traceback field is read"
        unknown = kapp.AsyncResult(uuid.uuid4().hex)
        assert unknown.state == "UNKNOWN", "no document: kernel tells a task never sent"
    finally:
        kapp.close()


def test_a_kernel_workers_results_read_through_celery(
        redis_url: str, mongo_url: str, queue: str, kernel_worker: App) -> None:
    capp = celery_client(redis_url, mongo_url, queue)
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
        # Sent by kernel, read by Celery: the PENDING document a kernel client writes on send.
        pending = kernel_worker.send_task("interop.nowhere", (), queue=queue + "-idle")
        assert capp.AsyncResult(pending.id).state == "PENDING"
        pending.forget()
    finally:
        capp.close()


def test_saved_groups_read_both_ways(redis_url: str, mongo_url: str, queue: str) -> None:
    kapp = App("kernel-client", broker=redis_url, results=mongo_url)
    capp = celery_client(redis_url, mongo_url, queue)
    try:
        ids = [uuid.uuid4().hex for _ in range(3)]
        mine = GroupResult(uuid.uuid4().hex, [kapp.AsyncResult(i) for i in ids], app=kapp)
        mine.save()
        saved = celery.result.GroupResult(uuid.uuid4().hex, [capp.AsyncResult(i) for i in ids],
                                          app=capp)
        saved.save()
        # Celery's MongoDB backend restores a group as the list of its members' results
        # (not a GroupResult): so it does for its own, and for kernel's.
        own = celery.result.GroupResult.restore(saved.id, app=capp)
        theirs = celery.result.GroupResult.restore(mine.id, app=capp)
        assert [r.id for r in own] == ids
        assert [r.id for r in theirs] == ids, "Celery restores a group kernel saved"
        back = GroupResult.restore(saved.id, kapp)
        assert back is not None and [r.id for r in back.results] == ids, \
            "kernel restores a group Celery saved"
        capp.backend.delete_group(mine.id)
        assert GroupResult.restore(mine.id, kapp) is None
    finally:
        kapp.close()
        capp.close()


def test_a_celery_chord_runs_on_kernel_workers(redis_url: str, mongo_url: str, queue: str,
                                               kernel_worker: App) -> None:
    capp = celery_client(redis_url, mongo_url, queue)
    try:
        add, tsum = capp.signature("interop.add"), capp.signature("interop.tsum")
        result = celery.chord([add.clone((i, i)) for i in range(6)], tsum).apply_async()
        assert result.get(timeout=60) == 30, \
            "kernel's celery.chord_unlock read the header through Celery's documents"
    finally:
        capp.close()


def test_a_kernel_chord_runs_on_a_celery_worker(redis_url: str, mongo_url: str, queue: str,
                                                celery_on_queue: CeleryWorkerProcess) -> None:
    kapp = App("kernel-client", broker=redis_url, results=mongo_url,
               config={"task_default_queue": queue, "result_chord_retry_interval": 0.2})

    def sig(name: str, *args: Any) -> Signature:
        return Signature(f"interop.{name}", args, app=kapp)

    try:
        body = chord([sig("add", i, i) for i in range(6)], sig("tsum")).apply_async()
        assert body.get(timeout=60) == 30, \
            f"Celery's chord_unlock ran kernel's chord; see {celery_on_queue.log}"
    finally:
        kapp.close()


def test_celerys_backend_cleanup_deletes_kernels_expired_documents(
        nx: NxServer, redis_url: str, mongo_url: str, queue: str) -> None:
    kapp = App("kernel-client", broker="memory://", results=mongo_url,
               config={"result_expires": 3600})
    capp = celery_client(redis_url, mongo_url, queue, result_expires=3600)
    try:
        old, fresh = uuid.uuid4().hex, uuid.uuid4().hex
        record = kapp.backend.record(old, "SUCCESS", 1)
        record["date_done"] = (datetime.now(timezone.utc) - timedelta(hours=2)).isoformat()
        kapp.backend.store_many([record])
        kapp.backend.store_result(fresh, "SUCCESS", 2)
        capp.backend.cleanup()
        with nx.client() as client:
            tasks = client[mongo_url.rsplit("/", 1)[1]]["celery_taskmeta"]
            assert tasks.find_one({"_id": old}) is None, "done 2 h ago: Celery deleted it"
            assert tasks.find_one({"_id": fresh}) is not None
    finally:
        kapp.close()
        capp.close()


REPLACE_BYTES = ("nx-27017 cannot replace a document that holds bytes (its replace path fails "
                 "with 'Object of type bytes is not JSON serializable'), which a binary result "
                 "serializer (pickle, msgpack) puts in `result`: MongoDB can")


@pytest.mark.xfail(strict=True, raises=WriteError, reason=REPLACE_BYTES)
def test_celery_with_pickle_replaces_a_started_result(redis_url: str, mongo_url: str,
                                                      queue: str) -> None:
    capp = celery_client(redis_url, mongo_url, queue, result_serializer="pickle",
                       accept_content=["json", "pickle"])
    try:
        task_id = uuid.uuid4().hex
        capp.backend.store_result(task_id, None, "STARTED")
        capp.backend.store_result(task_id, {1, 2}, "SUCCESS")
        assert capp.AsyncResult(task_id).result == {1, 2}
    finally:
        capp.close()


@pytest.mark.xfail(strict=True, raises=ConfigurationError, reason=REPLACE_BYTES)
def test_kernel_with_pickle_replaces_a_pending_result(mongo_url: str) -> None:
    kapp = App("kernel-client", broker="memory://", results=mongo_url,
               config={"result_serializer": "pickle", "accept_content": ["json", "pickle"]})
    try:
        task_id = uuid.uuid4().hex
        kapp.backend.store_sent([task_id])
        kapp.backend.store_result(task_id, "SUCCESS", {1, 2})
        assert kapp.AsyncResult(task_id).get(timeout=5) == {1, 2}
    finally:
        kapp.close()
