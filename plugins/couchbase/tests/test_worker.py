"""Kernel workers on the Couchbase store (the real SDK with its core replaced by the fake of
`kernel_couchbase.testing`, or a real cluster with ``KERNEL_TEST_COUCHBASE_URL``): chords run
on celery.chord_unlock, as Celery's Couchbase backend runs them, the body getting every value in
the header's order and a failed member failing it with a ChordError naming it; a task that meets
a record that does not decode fails with that sentence, and the worker serves on."""

from __future__ import annotations

import pytest

from kernel.testing.store_workers import StoreWorkerSuite


class TestWorkersOnCouchbase(StoreWorkerSuite):

    @pytest.fixture
    def results_url(self, couchbase_url: str) -> str:
        return couchbase_url
