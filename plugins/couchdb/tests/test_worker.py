"""A kernel client's chords on kernel workers over CouchDB: they run on celery.chord_unlock
(as Celery's CouchDB backend's do), the body gets every value in the header's order, and a
failed member fails the body with a ChordError naming it."""

from __future__ import annotations

import pytest

from kernel.testing.store_workers import StoreWorkerSuite


class TestWorkersOnCouchDB(StoreWorkerSuite):

    @pytest.fixture
    def results_url(self, couchdb_url: str) -> str:
        return couchdb_url
