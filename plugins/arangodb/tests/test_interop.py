"""Celery 5.7 (its ArangoDB backend, on pyArango and AQL) and kernel on one ArangoDB and one
Redis (the broker): results, failures, saved groups and chords (on ``celery.chord_unlock``, as
Celery's backend runs them), each written by one side and read or run by the other, with real
Celery worker processes.

No ArangoDB runs here: both sides talk HTTP to the fake of `kernel_arangodb.testing`, which
answers what pyArango reads when it connects and runs exactly the AQL statements Celery's
backend sends (get, mget, an UPSERT for set, REMOVE), as ArangoDB runs them; with
``KERNEL_TEST_ARANGODB_URL`` the same tests run against a real server."""

from __future__ import annotations

import pytest

from kernel.testing.interop import CeleryInteropSuite
from kernel_arangodb.store import ArangoDBStore


class TestCeleryInterop(CeleryInteropSuite):
    @pytest.fixture
    def kernel_backend(self, arangodb_url: str) -> tuple[str, dict[str, object]]:
        # Celery's backend never creates the collection: kernel makes it first.
        store = ArangoDBStore(arangodb_url, {"arangodb_create_collection": True})
        store.set([("kernel-made-this-collection", b"1")], None)
        store.close()
        return arangodb_url, {}
