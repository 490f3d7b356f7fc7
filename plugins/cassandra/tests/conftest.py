"""Shared fixtures. No CQL server runs here: unless ``KERNEL_TEST_CASSANDRA_URL`` names a real
cluster (``cassandra://[user:pass@]host[:port]/keyspace``: each test then uses a table of its
own there, dropped after), the tests run on mockylla, an in-process fake of cassandra-driver's
cluster (`kernel_cassandra.testing.FakeCluster`), one per test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from kernel.testing.results import app_stores
from kernel_cassandra.store import CassandraStore
from kernel_cassandra.testing import FakeCluster

REAL = os.environ.get("KERNEL_TEST_CASSANDRA_URL")


@pytest.fixture
def fake() -> Iterator[FakeCluster | None]:
    """The fake cluster of the test (None against a real one)."""
    if REAL:
        yield None
        return
    with FakeCluster() as cluster:
        cluster.create_keyspace("results")
        yield cluster


@pytest.fixture
def cassandra_url(fake: FakeCluster | None) -> Iterator[str]:
    """A table of the test's own (created by the store on first use)."""
    table = f"results_{uuid.uuid4().hex[:12]}"
    base = REAL.rstrip("/") if REAL else "cassandra://127.0.0.1/results"
    url = f"{base}/{table}"
    yield url
    if REAL:
        with app_stores(CassandraStore, "drop") as make:
            session = make(url).session()
            for name in (table, f"{table}_kernel"):
                session.execute(f"DROP TABLE IF EXISTS {name}")


@pytest.fixture
def make_store() -> Iterator[Callable[..., CassandraStore]]:
    """``make_store(url, **config)``: the store an App with that config uses."""
    with app_stores(CassandraStore, "cassandra-tests") as make:
        yield make
