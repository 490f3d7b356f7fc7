"""The kernel's conformance suite against Couchbase through the real SDK 4 (its C++ core
replaced by the fake of `kernel_couchbase.testing`; a real cluster with
``KERNEL_TEST_COUCHBASE_URL``): every guarantee of the result-store contract, inserts for adds,
CAS-checked replacements for the atomic counter, Couchbase's document expiry (whole seconds:
the expiry tests wait up to a second longer than elsewhere)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kernel.testing.results import ResultStoreSuite
from kernel_couchbase.store import CouchbaseStore


class TestCouchbaseStore(ResultStoreSuite):
    @pytest.fixture
    def store(self, couchbase_url: str) -> Iterator[CouchbaseStore]:
        s = CouchbaseStore(couchbase_url, {})
        yield s
        s.close()
