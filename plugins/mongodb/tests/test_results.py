"""The store beyond the suite: records in Celery's documents, saved groups, expiry by the TTL
index and on read, the cleanup, settings; on nx-27017."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from kernel import App, GroupResult, chord
from kernel.plugin import group_key, task_key
from kernel.testing.transport import wait_for
from kernel.testing.workers import running_worker
from kernel_mongodb.results import MongoResultStore
from kernel_mongodb.testing import NxServer

pytestmark = pytest.mark.integration

Make = Callable[..., MongoResultStore]


def _database(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _doc(nx: NxServer, url: str, collection: str, ident: str) -> dict[str, object] | None:
    with nx.client() as client:
        return client[_database(url)][collection].find_one({"_id": ident})


def test_a_record_lands_in_celerys_fields_and_reads_back(nx: NxServer, mongo_url: str) -> None:
    app = App("t", broker="memory://", results=mongo_url, config={"result_extended": True})
    try:
        task_id, child, group_id = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
        record = app.backend.record(task_id, "SUCCESS", {"total": 3}, extra={
            "children": [[[child, None], None]], "name": "proj.add", "args": [1, 2],
            "kwargs": {"z": 0}, "worker": "w1@host", "retries": 0, "queue": "celery",
            "group_id": group_id, "parent_id": child})
        app.backend.store_many([record])
        doc = _doc(nx, mongo_url, "celery_taskmeta", task_id)
        assert doc is not None and doc["status"] == "SUCCESS"
        assert doc["result"] == '{"total": 3}' or doc["result"] == '{"total":3}', \
            "result holds the json serializer's text, as Celery's backend writes it"
        assert isinstance(doc["date_done"], datetime), "date_done is a BSON date"
        assert doc["children"] == [[[child, None], None]] and doc["args"] == [1, 2]
        assert doc["kwargs"] == {"z": 0} and doc["name"] == "proj.add"
        assert doc["worker"] == "w1@host" and doc["retries"] == 0 and doc["queue"] == "celery"
        assert doc["group_id"] == group_id and doc["parent_id"] == child, \
            "group_id and parent_id are kept as Celery keeps them"
        assert doc["traceback"] is None
        meta = app.backend.get_meta(task_id)
        assert meta is not None
        for field in ("status", "result", "children", "name", "args", "kwargs", "worker",
                      "retries", "queue", "task_id", "group_id", "parent_id"):
            assert meta[field] == record[field], field
        assert meta["date_done"][:23] == record["date_done"][:23], "to the millisecond"
    finally:
        app.close()


def test_a_failure_and_a_pending_record(nx: NxServer, mongo_url: str) -> None:
    app = App("t", broker="memory://", results=mongo_url)
    try:
        task_id = uuid.uuid4().hex
        app.backend.store_sent([task_id])
        assert app.AsyncResult(task_id).state == "PENDING"
        pending = _doc(nx, mongo_url, "celery_taskmeta", task_id)
        assert pending is not None and pending["date_done"] is None, \
            "a task not done has no date_done, as in Celery's documents"
        assert isinstance(pending["expires_at"], datetime), "yet it expires"
        app.backend.store_result(task_id, "FAILURE", KeyError("k"), traceback="Traceback: k")
        app.backend.store_sent([task_id])  # a late PENDING never lands on the result
        result = app.AsyncResult(task_id)
        assert result.state == "FAILURE" and result.traceback == "Traceback: k"
        with pytest.raises(KeyError):
            result.get(timeout=1)
        result.forget()
        assert _doc(nx, mongo_url, "celery_taskmeta", task_id) is None
    finally:
        app.close()


def test_saved_groups_live_in_the_group_collection(nx: NxServer, mongo_url: str) -> None:
    app = App("t", broker="memory://", results=mongo_url)
    try:
        ids = [uuid.uuid4().hex for _ in range(3)]
        group = GroupResult(uuid.uuid4().hex, [app.AsyncResult(i) for i in ids], app=app)
        group.save()
        doc = _doc(nx, mongo_url, "celery_groupmeta", group.id)
        assert doc is not None and doc["result"].replace(" ", "") == \
            '["%s","%s","%s"]' % tuple(ids), "Celery's layout: the member ids, encoded"
        assert "kernel_tuple" not in doc, "the ids say it all"
        restored = GroupResult.restore(group.id, app)
        assert restored is not None and [r.id for r in restored.results] == ids
        # Nested groups and parents: Celery's list of ids cannot say them, kernel keeps them.
        inner = GroupResult(uuid.uuid4().hex, [app.AsyncResult(ids[0])], app=app)
        outer = GroupResult(uuid.uuid4().hex, [inner, app.AsyncResult(ids[1])], app=app)
        outer.save()
        nested = _doc(nx, mongo_url, "celery_groupmeta", outer.id)
        assert nested is not None and "kernel_tuple" in nested
        back = GroupResult.restore(outer.id, app)
        assert back is not None and isinstance(back.results[0], GroupResult)
        assert back.results[0].results[0].id == ids[0]
        group.delete()
        assert GroupResult.restore(group.id, app) is None
    finally:
        app.close()


def test_indexes_celerys_on_date_done_and_a_ttl_on_expires_at(nx: NxServer, mongo_url: str,
                                                               make_store: Make) -> None:
    store = make_store(mongo_url)
    store.set([(task_key(uuid.uuid4().hex), _record("SUCCESS")), ("k", b"v")], 60)
    with nx.client() as client:
        db = client[_database(mongo_url)]
        for name, keys in (("celery_taskmeta", {"date_done", "expires_at"}),
                           ("kernel_kv", {"expires_at"})):
            found = {next(iter(ix["key"])): ix for ix in db[name].list_indexes()}
            assert keys <= set(found), f"{name} has indexes on {sorted(found)}"
            assert found["expires_at"].get("expireAfterSeconds") == 0, \
                "a TTL index: each document expires at its own expires_at"
            if "date_done" in keys:
                assert "expireAfterSeconds" not in found["date_done"], \
                    "Celery's plain index, so Celery's create_index finds it as it makes it"


def _record(status: str, done: datetime | None = None) -> bytes:
    backend = App("t", broker="memory://").backend
    record = backend.record(uuid.uuid4().hex, status, 1)
    if done is not None:
        record["date_done"] = done.isoformat()
    return backend.encode(record)


def test_documents_expire_on_read_before_the_ttl_monitor_runs(nx: NxServer, mongo_url: str,
                                                              make_store: Make) -> None:
    """Celery's documents carry no expires_at (nothing a TTL index sees): they expire
    result_expires after date_done all the same, on read, and the cleanup deletes them."""
    store = make_store(mongo_url, result_expires=3600)
    old, fresh = uuid.uuid4().hex, uuid.uuid4().hex
    long_ago = datetime.now(timezone.utc) - timedelta(hours=2)
    with nx.client() as client:
        tasks = client[_database(mongo_url)]["celery_taskmeta"]
        for task_id, done in ((old, long_ago), (fresh, datetime.now(timezone.utc))):
            tasks.insert_one({"_id": task_id, "status": "SUCCESS", "result": "1",
                              "date_done": done, "traceback": None, "children": []})
        client[_database(mongo_url)]["celery_groupmeta"].insert_one(
            {"_id": old, "result": "[]", "date_done": long_ago})
    assert store.get(task_key(old)) is None, "done 2 h ago with result_expires 1 h: expired"
    assert store.get(group_key(old)) is None
    assert store.get(task_key(fresh)) is not None
    assert _doc(nx, mongo_url, "celery_taskmeta", old) is not None, "until the cleanup"
    deleted = store.cleanup()
    assert deleted["task"] == 1 and deleted["group"] == 1 and "kv" in deleted, deleted
    assert _doc(nx, mongo_url, "celery_taskmeta", old) is None
    assert store.get(task_key(fresh)) is not None, "the cleanup keeps live documents"


def test_the_ttl_index_deletes_expired_documents(nx: NxServer, mongo_url: str,
                                                 make_store: Make) -> None:
    """nx-27017's TTL monitor runs about every second (MongoDB's every 60 s)."""
    store = make_store(mongo_url, result_expires=0.5)
    task_id = uuid.uuid4().hex
    store.set([(task_key(task_id), _record("SUCCESS")), ("kv-" + task_id, b"v")], 0.5)
    wait_for(lambda: _doc(nx, mongo_url, "celery_taskmeta", task_id) is None and
             _doc(nx, mongo_url, "kernel_kv", "kv-" + task_id) is None, 30,
             "the server's TTL monitor to delete documents past their expires_at")


def test_a_pending_record_lands_over_an_expired_result_only(mongo_url: str,
                                                            make_store: Make) -> None:
    store = make_store(mongo_url, result_expires=3600)
    task_id = uuid.uuid4().hex
    hours_ago = datetime.now(timezone.utc) - timedelta(hours=2)
    store.set([(task_key(task_id), _record("SUCCESS", hours_ago))], 3600)
    store.add([(task_key(task_id), _record("PENDING"))], 3600)
    app = App("t", broker="memory://")
    got = store.get(task_key(task_id))
    assert got is not None and app.backend.decode(got)["status"] == "PENDING", \
        "the result had expired: add stores over it"
    store.set([(task_key(task_id), _record("SUCCESS"))], 3600)
    store.add([(task_key(task_id), _record("PENDING"))], 3600)
    got = store.get(task_key(task_id))
    assert got is not None and app.backend.decode(got)["status"] == "SUCCESS"


def test_kernel_results_cleanup(nx: NxServer, mongo_url: str, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    module = f"cleanup_app_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        f"from kernel import App\napp = App('c', broker='memory://', results={mongo_url!r}, "
        f"config={{'result_expires': 3600}})\n")
    monkeypatch.chdir(tmp_path)
    task_id = uuid.uuid4().hex
    with nx.client() as client:  # a Celery worker's document, done 2 hours ago
        client[_database(mongo_url)]["celery_taskmeta"].insert_one(
            {"_id": task_id, "status": "SUCCESS", "result": "1", "traceback": None,
             "children": [], "date_done": datetime.now(timezone.utc) - timedelta(hours=2)})
    result = subprocess.run([sys.executable, "-m", "kernel", "results", "cleanup", "-A", module],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "deleted expired records:" in result.stdout and "1 task" in result.stdout, \
        result.stdout
    assert _doc(nx, mongo_url, "celery_taskmeta", task_id) is None


def test_settings_name_the_database_and_collections(nx: NxServer, mongo_url: str,
                                                    make_store: Make) -> None:
    database = f"s_{uuid.uuid4().hex[:10]}"
    store = make_store(mongo_url, mongodb_backend_settings={
        "database": database, "taskmeta_collection": "tasks", "groupmeta_collection": "groups",
        "options": {"appname": "kernel-tests"}}, mongodb_kv_collection="keys")
    task_id, group_id = uuid.uuid4().hex, uuid.uuid4().hex
    saved = App("t", broker="memory://").backend.codec.serializer("json").dumps(
        {"result": [[group_id, None], []]})
    store.set([(task_key(task_id), _record("SUCCESS")), (group_key(group_id), saved),
               ("key", b"v")], None)
    with nx.client() as client:
        db = client[database]
        assert db["tasks"].find_one({"_id": task_id}) is not None
        assert db["groups"].find_one({"_id": group_id}) is not None
        assert db["keys"].find_one({"_id": "key"}) is not None
        assert "celery_taskmeta" not in db.list_collection_names()
    assert store._db.client().options.pool_options.metadata["application"] == \
        {"name": "kernel-tests"}, "options go to MongoClient"


def test_a_url_without_a_database_uses_celerys(nx: NxServer, make_store: Make) -> None:
    store = make_store(f"mongodb://{nx.host}:{nx.port}")
    assert store.settings.database == "celery"
    store = make_store(f"mongodb://{nx.host}:{nx.port}/mine?appname=x")
    assert store.settings.database == "mine"


def test_the_pool_is_sized_from_the_workers_concurrency(mongo_url: str, make_store: Make) -> None:
    assert make_store(mongo_url, worker_concurrency=7)._db.client().options.pool_options \
        .max_pool_size == 7, "kernel worker -c 7: up to 7 connections"
    assert make_store(mongo_url)._db.client().options.pool_options.max_pool_size == 10, \
        "Celery's default"
    assert make_store(mongo_url, worker_concurrency=7, mongodb_backend_settings={
        "options": {"maxPoolSize": 3}})._db.client().options.pool_options.max_pool_size == 3
    assert make_store(mongo_url + "?maxpoolsize=4", worker_concurrency=7)._db.client() \
        .options.pool_options.max_pool_size == 4, "the URL's option wins over the default"


def test_a_missing_database_is_created_on_the_first_write(nx: NxServer, make_store: Make) -> None:
    database = f"new_{uuid.uuid4().hex[:10]}"
    with nx.client() as client:
        assert database not in client.list_database_names()
    store = make_store(nx.url(database))
    assert store.get(task_key(uuid.uuid4().hex)) is None, "reading a missing database: nothing"
    store.set([("k", b"v")], None)
    assert store.get("k") == b"v"
    with nx.client() as client:
        assert database in client.list_database_names()


def test_many_results_in_one_batch(mongo_url: str, make_store: Make) -> None:
    store = make_store(mongo_url)
    items = [(task_key(uuid.uuid4().hex), _record("SUCCESS")) for _ in range(200)]
    store.set(items, None)
    assert all(store.get(key) is not None for key, _ in items)
    store.delete([key for key, _ in items])
    assert all(store.get(key) is None for key, _ in items)


def test_a_counter_after_time_passes(mongo_url: str, make_store: Make) -> None:
    store = make_store(mongo_url)
    key = f"c-{uuid.uuid4().hex}"
    assert store.incr(key, 1, 30) == 1
    assert store.incr(key, 1, 30) == 2, "an expiry refreshed by incr keeps the count"
    assert store.get(key) == b"2"
    store.delete([key])
    assert store.incr(key) == 1


@pytest.mark.timeout(60)
def test_a_kernel_chord_on_kernel_workers(mongo_url: str) -> None:
    """chord_unlock, as Celery's MongoDB backend runs chords: the body runs once, with the
    header's results in order."""
    app = App("chords", broker="memory://", results=mongo_url,
              config={"result_chord_retry_interval": 0.1})
    bodies: list[str] = []

    @app.task(name="chords.square")
    def square(x: int) -> int:
        return x * x

    @app.task(name="chords.collect", bind=True)
    def collect(self: Any, values: list[int]) -> list[int]:
        bodies.append(self.request.id)
        return values

    try:
        with running_worker(app, concurrency=3):
            result = chord([square.s(i) for i in range(5)], collect.s()).apply_async()
            assert result.get(timeout=30) == [0, 1, 4, 9, 16]
            assert bodies == [result.id]
    finally:
        app.close()
