"""Kernel workers on the ArangoDB store (the fake of `kernel_arangodb.testing`, or a real
server with ``KERNEL_TEST_ARANGODB_URL``): chords run on celery.chord_unlock, as Celery's
ArangoDB backend runs them, the body getting every value in the header's order and a failed
member failing it with a ChordError naming it; a task that meets a record that does not decode
fails with that sentence, and the worker serves on."""

from __future__ import annotations

import pytest

from kernel.testing.store_workers import StoreWorkerSuite


class TestWorkersOnArangoDB(StoreWorkerSuite):
    config = {"arangodb_create_collection": True}

    @pytest.fixture
    def results_url(self, arangodb_url: str) -> str:
        return arangodb_url
