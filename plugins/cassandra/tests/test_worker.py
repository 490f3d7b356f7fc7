"""A kernel worker (in the test's own process, where the fake cluster is: mockylla stands in
for Cassandra here) on the Cassandra store: chords run on celery.chord_unlock (as Celery's
Cassandra backend's do), the body gets every value in the header's order, a failed member
fails the body with a ChordError naming it; a record that does not decode, read by a task, is
that task's failure in one sentence, and the worker serves on."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from kernel import App
from kernel.testing.store_workers import StoreWorkerSuite
from kernel_cassandra.store import INSERT_TASK, CassandraStore


class TestWorkersOnCassandra(StoreWorkerSuite):
    def plant(self, app: App, task_id: str) -> None:
        # Into Celery's task table, as a row of its (the store's set writes only records).
        store = app.backend.store
        assert isinstance(store, CassandraStore)
        store._execute("plant", INSERT_TASK, [task_id, "SUCCESS", b"\x00 not a record",
                                              datetime.now(timezone.utc), b"null", b"null"],
                       write=True)

    @pytest.fixture
    def results_url(self, cassandra_url: str) -> str:
        return cassandra_url
