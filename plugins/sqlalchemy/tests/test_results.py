"""The store beyond the suite: records in Celery's columns, expiry and the cleanup, table
settings, errors as sentences, reconnecting and forking; on each database."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any
from pathlib import Path

import pytest
import sqlalchemy as sa

from kernel import App
from kernel.plugin import ConfigurationError, ConnectionFailed, DecodeError, group_key, task_key
from kernel_sqlalchemy.connection import sqlalchemy_url
from kernel_sqlalchemy.results import SqlResultStore

pytestmark = pytest.mark.integration

Make = Callable[..., SqlResultStore]


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(sqlalchemy_url(url))


def _row(url: str, task_id: str, table: str = "celery_taskmeta") -> dict[str, object] | None:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.text(f"SELECT * FROM {table} WHERE task_id = :id"),
                               {"id": task_id}).mappings().first()
            return None if row is None else dict(row)
    finally:
        engine.dispose()


def test_a_record_lands_in_celerys_columns_and_reads_back(db_url: str, make_store: Make) -> None:
    app = App("t", broker="memory://", results=db_url, config={"result_extended": True})
    try:
        task_id = uuid.uuid4().hex
        record = app.backend.record(task_id, "SUCCESS", {"total": 3}, extra={
            "children": [[[uuid.uuid4().hex, None], None]], "name": "proj.add",
            "args": [1, 2], "kwargs": {"z": 0}, "worker": "w1@host", "retries": 0,
            "queue": "celery"})
        app.backend.store_many([record])
        row = _row(db_url, task_id)
        assert row is not None and row["status"] == "SUCCESS"
        assert bytes(row["result"]) == b'{"total": 3}' or b'"total"' in bytes(row["result"]), \
            "the result column holds the result serializer's bytes, as Celery writes it"
        assert row["name"] == "proj.add" and row["worker"] == "w1@host"
        meta = app.backend.get_meta(task_id)
        assert meta is not None
        for field in ("status", "result", "children", "name", "args", "kwargs", "worker",
                      "retries", "queue", "task_id"):
            assert meta[field] == record[field], field
        assert meta["date_done"][:19] == record["date_done"][:19]
    finally:
        app.close()


def test_a_failure_and_a_pending_record(db_url: str) -> None:
    app = App("t", broker="memory://", results=db_url)
    try:
        task_id = uuid.uuid4().hex
        app.backend.store_sent([task_id])
        assert app.AsyncResult(task_id).state == "PENDING"
        app.backend.store_result(task_id, "FAILURE", KeyError("k"), traceback="Traceback: k")
        app.backend.store_sent([task_id])  # a late PENDING never lands on the result
        result = app.AsyncResult(task_id)
        assert result.state == "FAILURE" and result.traceback == "Traceback: k"
        with pytest.raises(KeyError):
            result.get(timeout=1)
        result.forget()
        assert _row(db_url, task_id) is None
    finally:
        app.close()


def test_saved_groups_live_in_the_group_table(db_url: str) -> None:
    app = App("t", broker="memory://", results=db_url)
    try:
        group_id = uuid.uuid4().hex
        tuples = [[[group_id, None], [[[uuid.uuid4().hex, None], None]]]]
        app.backend.save_group(group_id, {"result": tuples[0]})
        assert app.backend.restore_group(group_id) == {"result": tuples[0]}
        engine = _engine(db_url)
        with engine.connect() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM celery_tasksetmeta WHERE "
                                         "taskset_id = :g"), {"g": group_id}).scalar()
        engine.dispose()
        assert count == 1
        app.backend.delete_group(group_id)
        assert app.backend.restore_group(group_id) is None
    finally:
        app.close()


def test_rows_expire_after_result_expires_and_the_cleanup_deletes_them(
        db_url: str, make_store: Make) -> None:
    store = make_store(db_url, result_expires=1.0)
    backend = App("t", broker="memory://").backend
    task_id, group_id, key = uuid.uuid4().hex, uuid.uuid4().hex, f"k-{uuid.uuid4().hex}"
    store.set([(task_key(task_id), backend.encode(backend.record(task_id, "SUCCESS", 1))),
               (group_key(group_id), backend.codec.serializer("json").dumps(
                   {"result": [[group_id, None], []]})),
               (key, b"v")], 1.0)
    assert store.get(task_key(task_id)) is not None
    time.sleep(2.2)
    assert store.get(task_key(task_id)) is None, "a row older than result_expires must not read"
    assert store.get(group_key(group_id)) is None and store.get(key) is None
    assert _row(db_url, task_id) is not None, "expired rows stay until the cleanup"
    deleted = store.cleanup()
    assert deleted["task"] >= 1 and deleted["group"] >= 1 and deleted["kv"] >= 1
    assert _row(db_url, task_id) is None


def test_table_names_and_creating_them_on_first_use(db_url: str, make_store: Make) -> None:
    suffix = uuid.uuid4().hex[:8]
    names = {"task": f"t_{suffix}", "group": f"g_{suffix}", "kv": f"kv_{suffix}"}
    store = make_store(db_url, database_table_names=names,
                       database_create_tables_at_setup=False)
    engine = _engine(db_url)
    try:
        assert not sa.inspect(engine).has_table(names["task"]), \
            "database_create_tables_at_setup=False: nothing is created at setup"
        store.set([("k", b"v")], None)
        inspector = sa.inspect(engine)
        assert all(inspector.has_table(n) for n in names.values())
        with engine.begin() as conn:
            for name in names.values():
                conn.execute(sa.text(f"DROP TABLE {name}"))
    finally:
        engine.dispose()


def test_a_row_that_does_not_decode_is_a_decode_error(db_url: str, make_store: Make) -> None:
    store = make_store(db_url)
    task_id = uuid.uuid4().hex
    engine = _engine(db_url)
    with engine.begin() as conn:  # through Celery's table definition (its id sequence)
        conn.execute(store._task.insert().values(task_id=task_id, status="SUCCESS",
                                                 result=b"{not json"))
    engine.dispose()
    with pytest.raises(DecodeError, match="result serializer 'json'.*check result_serializer"):
        store.get(task_key(task_id))
    store.delete([task_key(task_id)])


def test_a_value_that_is_not_a_record_is_refused(db_url: str, make_store: Make) -> None:
    with pytest.raises(DecodeError, match="does not decode"):
        make_store(db_url).set([(task_key(uuid.uuid4().hex), b"opaque")], None)


def test_unreachable_server(make_store: Make) -> None:
    start = time.monotonic()
    with pytest.raises(ConnectionFailed) as caught:
        make_store("db+postgresql+psycopg://kernel:s3cret@127.0.0.1:1/db",
                   broker_connection_timeout=2)
    message = str(caught.value)
    assert "cannot reach the result database" in message and "s3cret" not in message
    assert "\n" not in message and time.monotonic() - start < 15


def test_wrong_credentials(mysql_url: str, make_store: Make) -> None:
    url = mysql_url.replace("root@", "root:wrong-pass@")
    with pytest.raises(ConfigurationError, match="refused the credentials") as caught:
        make_store(url)
    assert "wrong-pass" not in str(caught.value)


def test_missing_database(pg_url: str, make_store: Make) -> None:
    url = pg_url.rsplit("/", 1)[0] + "/no_such_database_here"
    with pytest.raises(ConfigurationError, match="does not exist.*CREATE DATABASE"):
        make_store(url)


def test_urls_and_repr(pg_url: str, make_store: Make) -> None:
    store = make_store(pg_url.replace("postgres@", "postgres:hidden@"))
    assert "hidden" not in repr(store) and "**" in repr(store)
    with pytest.raises(ConfigurationError, match="in-memory SQLite"):
        make_store("db+sqlite://")
    assert sqlalchemy_url("db+postgresql://u@h/d").get_driver_name() in ("psycopg2", "psycopg")


def test_reconnects_after_the_server_closed_its_connections(pg_url: str,
                                                            make_store: Make) -> None:
    name = f"kernel-test-{uuid.uuid4().hex[:12]}"  # to find this store's connections alone
    store = make_store(pg_url, worker_concurrency=2, database_engine_options={
        "connect_args": {"application_name": name, "connect_timeout": 3}})
    store.set([("before", b"1")], 5)
    admin = _engine(pg_url)

    def restart() -> None:  # what a server restart does to every connection it had
        with admin.begin() as conn:
            killed = conn.execute(sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = :name"), {"name": name}).scalar()
        assert killed and killed >= 1

    restart()
    store.set([("after", b"2")], 5)
    assert store.get("before") == b"1" and store.incr(f"c-{uuid.uuid4().hex}") == 1
    # A count is never tried twice once its commit was sent, but a connection found dead
    # before that (no pre-ping looks first) committed nothing: it is counted, once.
    counter = f"c-{uuid.uuid4().hex}"
    assert store.incr(counter) == 1
    restart()
    assert store.incr(counter) == 2
    admin.dispose()


def _child(store: SqlResultStore, key: str) -> None:
    store.set([(key, str(os.getpid()).encode())], 30)
    os._exit(0 if store.get(key) == str(os.getpid()).encode() else 1)


def test_a_forked_child_uses_its_own_connections(db_url: str, make_store: Make) -> None:
    store = make_store(db_url)
    store.set([("parent", b"p")], 30)
    parent_engine = store._db.engine()
    process = multiprocessing.get_context("fork").Process(
        target=_child, args=(store, f"child-{uuid.uuid4().hex}"))
    process.start()
    process.join(30)
    assert process.exitcode == 0, "the child stored and read through an engine of its own"
    assert store._db.engine() is parent_engine and store.get("parent") == b"p", \
        "the parent's connections survived the child"


def test_kernel_results_cleanup(db_url: str, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    module = f"cleanup_app_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        f"from kernel import App\napp = App('c', broker='memory://', results={db_url!r}, "
        f"config={{'result_expires': 0.5}})\n")
    monkeypatch.chdir(tmp_path)
    app = App("t", broker="memory://", results=db_url)
    task_id = uuid.uuid4().hex
    app.backend.store_result(task_id, "SUCCESS", 1)
    app.close()
    time.sleep(1.2)
    result = subprocess.run([sys.executable, "-m", "kernel", "results", "cleanup", "-A", module],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "deleted expired records:" in result.stdout and " task" in result.stdout
    assert _row(db_url, task_id) is None


def test_tables_in_a_schema_of_their_own(pg_url: str, make_store: Make) -> None:
    schema = f"s_{uuid.uuid4().hex[:8]}"
    engine = _engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        store = make_store(pg_url, database_table_schemas={
            "task": schema, "group": schema, "kv": schema})
        task_id = uuid.uuid4().hex
        app = App("t", broker="memory://")
        store.set([(task_key(task_id), app.backend.encode(
            app.backend.record(task_id, "SUCCESS", 7)))], None)
        assert store.get(task_key(task_id)) is not None
        assert _row(pg_url, task_id, f"{schema}.celery_taskmeta") is not None
        assert _row(pg_url, task_id) is None, "nothing was written to the default schema"
        store.close()
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


@pytest.mark.timeout(120)
def test_a_running_worker_loses_no_result_when_the_server_drops_its_connections(
        pg_url: str) -> None:
    """What a PostgreSQL restart does to a worker's connections (every one dropped), done
    every 0.3 s while tasks run: every task still succeeds, and its result is stored."""
    import threading

    from kernel.testing.workers import running_worker, wait_succeeded

    name = f"kernel-test-{uuid.uuid4().hex[:12]}"
    app = App("restart", broker="memory://", results=pg_url, config={
        "database_engine_options": {"connect_args": {"application_name": name,
                                                     "connect_timeout": 3}}})

    @app.task(name="restart.double")
    def double(x: int) -> int:
        time.sleep(0.02)
        return 2 * x

    stop = threading.Event()
    kills = [0]

    def killer() -> None:
        admin = _engine(pg_url)
        while not stop.is_set():
            with admin.begin() as conn:
                kills[0] += int(conn.execute(sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :name"), {"name": name}).scalar() or 0)
            time.sleep(0.3)
        admin.dispose()

    thread = threading.Thread(target=killer)
    try:
        with running_worker(app, concurrency=4):
            thread.start()
            results = [double.delay(i) for i in range(150)]
            wait_succeeded(app, results, timeout=90)
            stop.set()
            thread.join()
            assert [r.get(timeout=5) for r in results] == [2 * i for i in range(150)]
        assert kills[0] >= 3, "the server dropped the worker's connections while it ran"
    finally:
        stop.set()
        app.close()


def test_a_task_table_of_an_older_celery(db_url: str, make_store: Make) -> None:
    """A table without the columns Celery added later (children, the extended ones): kernel
    writes the columns it finds."""
    name = f"old_{uuid.uuid4().hex[:8]}"
    engine = _engine(db_url)
    old = sa.Table(name, sa.MetaData(),
                   sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                   sa.Column("task_id", sa.String(155), unique=True),
                   sa.Column("status", sa.String(50)), sa.Column("result", sa.LargeBinary),
                   sa.Column("date_done", sa.DateTime), sa.Column("traceback", sa.Text))
    old.create(engine)
    try:
        app = App("t", broker="memory://", results=db_url, config={
            "database_table_names": {"task": name}, "result_extended": True})
        task_id = uuid.uuid4().hex
        app.backend.store_result(task_id, "SUCCESS", 5, extra={"name": "x.y", "args": [1]})
        meta = app.backend.get_meta(task_id)
        assert meta is not None and meta["result"] == 5 and "name" not in meta
        app.close()
    finally:
        old.drop(engine)
        engine.dispose()


def test_pickled_results_of_an_older_celery(db_url: str, make_store: Make) -> None:
    """Celery before 5.7 pickled the result column whatever the serializer: such rows of plain
    values read, a pickle naming a class never loads, and database_pickled_results writes
    what that Celery reads."""
    import pickle

    store = make_store(db_url)
    plain, hostile = uuid.uuid4().hex, uuid.uuid4().hex
    engine = _engine(db_url)
    with engine.begin() as conn:
        for task_id, value in ((plain, pickle.dumps({"exc_type": "KeyError", "n": [1]})),
                               (hostile, pickle.dumps(ValueError("x")))):
            conn.execute(store._task.insert().values(task_id=task_id, status="SUCCESS",
                                                     result=value))
    engine.dispose()
    app = App("t", broker="memory://")
    record = store.get(task_key(plain))
    assert record is not None and app.backend.decode(record)["result"] == \
        {"exc_type": "KeyError", "n": [1]}
    with pytest.raises(DecodeError, match="names builtins"):
        store.get(task_key(hostile))
    older = make_store(db_url, database_pickled_results=True)
    task_id = uuid.uuid4().hex
    older.set([(task_key(task_id), app.backend.encode(
        app.backend.record(task_id, "SUCCESS", [3])))], None)
    row = _row(db_url, task_id)
    assert row is not None and pickle.loads(bytes(row["result"])) == [3]  # noqa: S301
    assert store.get(task_key(task_id)) is not None, "and the rows read back"
    store.delete([task_key(i) for i in (plain, hostile, task_id)])


@pytest.mark.timeout(60)
def test_a_kernel_chord_on_kernel_workers(db_url: str) -> None:
    """chord_unlock, as Celery's database backend runs chords: the body runs once, with the
    header's results in order."""
    from kernel import chord
    from kernel.testing.workers import running_worker

    app = App("chords", broker="memory://", results=db_url,
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


def test_the_pool_is_sized_from_the_workers_concurrency(pg_url: str, make_store: Make) -> None:
    pool: Any = make_store(pg_url, worker_concurrency=7)._db.engine().pool  # a QueuePool
    assert pool.size() == 7, "kernel worker -c 7 keeps 7 connections"
    default: Any = make_store(pg_url)._db.engine().pool
    assert default.size() == 5, "SQLAlchemy's default"


def _statements(store: SqlResultStore) -> list[str]:
    """Every statement `store`'s engine runs from now on."""
    seen: list[str] = []
    sa.event.listen(store._db.engine(), "before_cursor_execute",
                    lambda conn, cursor, statement, *rest: seen.append(statement))
    return seen


def _record(task_id: str, value: Any = 1) -> bytes:
    app = App("records", broker="memory://", results=None)
    try:
        return app.backend.encode(app.backend.record(task_id, "SUCCESS", value))
    finally:
        app.close()


def _wait_in_thread(store: SqlResultStore, key: str) -> Callable[[], bytes | None]:
    """Start ``store.wait(key)`` on a thread; what it gives returns the value it got."""
    import threading

    got: list[bytes | None] = []
    thread = threading.Thread(target=lambda: got.append(store.wait(key, 20)))
    thread.start()

    def result() -> bytes | None:
        thread.join(30)
        assert got, "the wait should have returned"
        return got[0]

    return result


@pytest.mark.parametrize("size", [10, 20_000])
def test_on_postgresql_a_waiter_is_woken_by_the_write(pg_url: str, make_store: Make,
                                                      size: int) -> None:
    # A small record comes with the notification (the waiter reads nothing more); one too big
    # for a notification comes by its key, and the waiter reads the row.
    waiter, writer = make_store(pg_url), make_store(pg_url)
    assert waiter.capabilities.push_wait, "psycopg 3 on PostgreSQL: woken by NOTIFY"
    task_id = uuid.uuid4().hex
    key = task_key(task_id)
    assert waiter.wait(key, 0.01) is None  # the listener is up
    statements = _statements(waiter)
    result = _wait_in_thread(waiter, key)
    deadline = time.monotonic() + 10
    while not statements:  # its first look at the row, before it sleeps
        assert time.monotonic() < deadline
        time.sleep(0.01)
    began = time.monotonic()
    writer.set([(key, _record(task_id, "x" * size))], 30)
    got = result()
    assert time.monotonic() - began < 0.5, "woken at the commit, not at a later look"
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) == (1 if size < 7_000 else 2), statements
    assert got == waiter.get(key), "the record as a read of the row gives it"


def test_a_waiter_gets_its_result_while_the_listener_is_cut_off(pg_url: str,
                                                               make_store: Make) -> None:
    waiter, writer = make_store(pg_url), make_store(pg_url)
    task_id = uuid.uuid4().hex
    key = task_key(task_id)
    assert waiter.wait(key, 0.01) is None  # the listener is up
    listener = waiter._listener
    assert listener is not None and listener.listening.is_set()
    admin = _engine(pg_url)
    with admin.begin() as conn:
        assert conn.execute(sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = :name"), {"name": listener.name}).scalar() == 1
    admin.dispose()
    writer.set([(key, _record(task_id))], 30)
    assert waiter.wait(key, 10) == waiter.get(key) is not None, "found by looking"
    deadline = time.monotonic() + 10
    while not listener.listening.is_set():
        assert time.monotonic() < deadline, "the listener should connect again"
        time.sleep(0.05)


def test_connect_args_add_to_the_defaults(pg_url: str, make_store: Make) -> None:
    """A user's connect_args (PostgreSQL's session settings, here) keep the connect timeout
    the store sets, and reach every connection."""
    store = make_store(pg_url, database_engine_options={
        "connect_args": {"options": "-c synchronous_commit=off"}})
    engine = store._db.engine()
    seen: dict[str, Any] = {}
    sa.event.listen(engine, "do_connect",
                    lambda _dialect, _record, _args, params: seen.update(params))
    engine.dispose()  # the next connection is a new one
    with engine.connect() as conn:
        assert conn.execute(sa.text("SHOW synchronous_commit")).scalar() == "off"
    assert seen["connect_timeout"] >= 2, "the store's connect timeout stays"
    with pytest.raises(ConfigurationError, match="connect_args"):
        make_store(pg_url, database_engine_options={"connect_args": "-c x=y"})


def test_a_url_with_session_options_listens_with_them(pg_url: str, make_store: Make) -> None:
    """libpq options in the URL's query (here the durability trade the docs describe) reach
    the listening connection too: waiters are woken, not left to look every second."""
    url = f"{pg_url}?options=-c%20synchronous_commit%3Doff"
    waiter, writer = make_store(url), make_store(url)
    task_id = uuid.uuid4().hex
    key = task_key(task_id)
    assert waiter.wait(key, 0.01) is None
    listener = waiter._listener
    assert listener is not None and listener.listening.is_set(), "the listener connected"
    with waiter._db.engine().connect() as conn:
        assert conn.execute(sa.text("SHOW synchronous_commit")).scalar() == "off"
    got = _wait_in_thread(waiter, key)
    writer.set([(key, _record(task_id))], 30)
    assert got() == waiter.get(key) is not None
