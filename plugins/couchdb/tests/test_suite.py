"""The kernel's conformance suite against pouchdb-server: every guarantee of the result-store
contract, expiry by a stored deadline and the revision-checked counter included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kernel.testing.results import ResultStoreSuite
from kernel_couchdb.store import CouchDBStore


class TestCouchDBStore(ResultStoreSuite):
    @pytest.fixture
    def store(self, couchdb_url: str) -> Iterator[CouchDBStore]:
        s = CouchDBStore(couchdb_url, {})
        yield s
        s.close()
