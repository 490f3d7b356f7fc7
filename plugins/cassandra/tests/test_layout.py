"""Celery's table, checked two ways on mockylla (an in-process fake of cassandra-driver's
cluster: no CQL server runs here; see kernel_cassandra/testing.py for what it cannot prove):

* recorded CQL: the statements kernel sends are Celery's backend's, which runs on the same fake
  in the same test (the table's columns and keys, the insert's columns and TTL);
* the rows each side writes: Celery's backend writes and kernel reads, kernel writes and
  Celery's backend reads, through one fake table.

Real workers on both sides are tests/test_interop.py's. ``KERNEL_TEST_CASSANDRA_URL`` does not
apply to this module (it reads the fake's record of statements)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kernel import App
from kernel_cassandra.store import CassandraStore
from kernel_cassandra.testing import FakeCluster

celery = pytest.importorskip("celery", reason="the layout tests need celery[cassandra]")


def cql(text: str) -> str:
    """A statement without the layout of its text: one space between words, none inside
    brackets, no trailing semicolon, upper-case keywords as written."""
    text = " ".join(text.split()).rstrip(";").strip()
    return re.sub(r"\(\s+", "(", re.sub(r"\s+\)", ")", text))


@pytest.fixture
def table() -> str:
    return f"results_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster() as fake:
        fake.create_keyspace("results")
        yield fake


def celery_app(table: str, **conf: Any) -> Any:
    capp = celery.Celery("celery-side")
    capp.conf.update(result_backend="cassandra://", cassandra_servers=["127.0.0.1"],
                     cassandra_keyspace="results", cassandra_table=table, **conf)
    return capp


@pytest.fixture
def kernel_app(table: str) -> Callable[..., App]:
    apps: list[App] = []

    def make(**config: Any) -> App:
        app = App("kernel-side", broker="memory://", results="cassandra://",
                  config={"cassandra_servers": ["127.0.0.1"], "cassandra_keyspace": "results",
                          "cassandra_table": table, **config})
        apps.append(app)
        return app

    yield make  # type: ignore[misc]
    for app in apps:
        app.close()


def test_kernel_creates_celerys_table(cluster: FakeCluster, table: str,
                                      kernel_app: Callable[..., App]) -> None:
    celery_app(table).backend.store_result("c", 1, "SUCCESS")  # Celery creates it first
    [(theirs, _)] = cluster.sent(r"^\s*CREATE TABLE")
    kernel_app().backend.store_result("k", "SUCCESS", 2)
    mine = [s for s, _ in cluster.sent(r"CREATE TABLE IF NOT EXISTS") if "_kernel" not in s]
    assert [cql(s).replace(" IF NOT EXISTS", "") for s in mine] == [cql(theirs)], \
        "kernel's results table is Celery's: the same columns, key and clustering order"


def test_kernel_inserts_celerys_columns_with_celerys_ttl(
        cluster: FakeCluster, table: str, kernel_app: Callable[..., App]) -> None:
    celery_app(table, cassandra_entry_ttl=600).backend.store_result("c", 1, "SUCCESS")
    [(theirs, their_values)] = cluster.sent(r"^\s*INSERT")
    kernel_app(cassandra_entry_ttl=600).backend.store_result("k", "SUCCESS", 2)
    [(mine, my_values)] = cluster.sent(r"^INSERT INTO " + table + " ")
    assert cql(mine) == cql(theirs), "the same insert, cassandra_entry_ttl as USING TTL"
    assert [type(v) for v in my_values] == [type(v) for v in their_values], \
        "the same types in every column (text, text, blob, timestamp, blob, blob)"


def test_result_expires_is_the_ttl_without_cassandra_entry_ttl(
        cluster: FakeCluster, kernel_app: Callable[..., App]) -> None:
    kernel_app(result_expires=7200).backend.store_result("k", "SUCCESS", 2)
    [(mine, _)] = cluster.sent(r"^INSERT INTO results_\w+ \(task_id")
    assert mine.endswith("USING TTL 7200"), mine


def test_celerys_rows_read_through_kernel(cluster: FakeCluster, table: str,
                                          kernel_app: Callable[..., App]) -> None:
    capp = celery_app(table)
    capp.backend.store_result("c-ok", {"n": [1, 2]}, "SUCCESS")
    capp.backend.store_result("c-bad", KeyError("gone"), "FAILURE", traceback="Trace c")
    kapp = kernel_app()
    meta = kapp.backend.get_meta("c-ok")
    assert meta is not None and meta["status"] == "SUCCESS" and meta["result"] == {"n": [1, 2]}
    assert meta["date_done"], "Celery's date_done column reads as the record's"
    failed = kapp.AsyncResult("c-bad")
    with pytest.raises(KeyError, match="gone"):
        failed.get(timeout=5)
    assert failed.traceback == "Trace c"


def test_kernels_rows_read_through_celery(cluster: FakeCluster, table: str,
                                          kernel_app: Callable[..., App]) -> None:
    kapp = kernel_app()
    kapp.backend.store_result("k-ok", "SUCCESS", {"n": [3]})
    kapp.backend.store_result("k-bad", "FAILURE", KeyError("lost"), traceback="Trace k")
    capp = celery_app(table)
    theirs = capp.backend.get_task_meta("k-ok")
    assert theirs["status"] == "SUCCESS" and theirs["result"] == {"n": [3]}
    failed = capp.backend.get_task_meta("k-bad")
    assert failed["status"] == "FAILURE" and isinstance(failed["result"], KeyError)
    assert failed["traceback"] == "Trace k"
    kapp.backend.forget("k-ok")
    assert capp.backend.get_task_meta("k-ok")["status"] == "PENDING", \
        "forgetting deletes the task's partition, every row of it"


def test_a_late_pending_never_shadows_the_result(
        cluster: FakeCluster, kernel_app: Callable[..., App]) -> None:
    """A client's PENDING (an add) that reaches the cluster after the worker's result: its row
    sorts below (date_done 1970), so the task still reads as done."""
    kapp = kernel_app()
    store = kapp.backend.store
    assert isinstance(store, CassandraStore)
    kapp.backend.store_result("t", "SUCCESS", 5)
    store.add([("celery-task-meta-t", kapp.backend.encode(
        {"task_id": "t", "status": "PENDING", "result": None}))], None)
    assert kapp.AsyncResult("t").get(timeout=5) == 5
    [(sent, values)] = cluster.sent(r"^INSERT INTO results_\w+ .* IF NOT EXISTS")
    assert values[3].year == 1970 and values[1] == "PENDING"


def test_kernels_own_keys_stay_out_of_celerys_table(
        cluster: FakeCluster, table: str, kernel_app: Callable[..., App]) -> None:
    store = kernel_app().backend.store
    assert isinstance(store, CassandraStore)
    store.set([("celery-taskset-meta-g", b"group"), ("revoked-x", b"1")], None)
    sent = [s for s, _ in cluster.sent(r"^INSERT")]
    assert sent and all(s.startswith(f"INSERT INTO {table}_kernel ") for s in sent), \
        "saved groups and kernel's own keys go to <table>_kernel (Celery's table has no " \
        "place for them; Celery's Cassandra backend cannot save groups)"
