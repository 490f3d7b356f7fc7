"""The kernel's conformance suite against ArangoDB's document API (the fake of
`kernel_arangodb.testing`, a thread answering the HTTP API python-arango calls; a real server
with ``KERNEL_TEST_ARANGODB_URL``): every guarantee of the result-store contract, inserts for
adds, revision-checked replacements for the atomic counter, expiry by a stored deadline."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kernel.testing.results import ResultStoreSuite
from kernel_arangodb.store import ArangoDBStore


class TestArangoDBStore(ResultStoreSuite):
    @pytest.fixture
    def store(self, arangodb_url: str) -> Iterator[ArangoDBStore]:
        s = ArangoDBStore(arangodb_url, {"arangodb_create_collection": True})
        yield s
        s.close()
