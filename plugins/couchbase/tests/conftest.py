"""Shared fixtures: the Couchbase cluster the tests run against.

No Couchbase Server runs where these tests run: by default every ``Cluster`` the SDK makes in
the test process talks to `kernel_couchbase.testing.CouchbaseFake`, which stands in for the
SDK's C++ core beneath its Python layer (the real SDK runs above it; what the fake models is
in its docstring). With ``KERNEL_TEST_COUCHBASE_URL=couchbase://user:password@host/bucket``
the tests run against that real cluster instead (the bucket must exist); the tests that need
the fake's own knobs (stopping it, a missing bucket, reading its items) skip there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from kernel_couchbase.testing import CouchbaseFake

REAL = os.environ.get("KERNEL_TEST_COUCHBASE_URL", "").rstrip("/")


@pytest.fixture(scope="session")
def fake() -> Iterator[CouchbaseFake | None]:
    if REAL:
        yield None
        return
    cluster = CouchbaseFake(buckets=("results",))
    with cluster.installed():
        yield cluster


@pytest.fixture
def couchbase_url(fake: CouchbaseFake | None) -> str:
    """The bucket the tests share (every test uses keys of its own)."""
    return REAL or fake.url("results")  # type: ignore[union-attr]


@pytest.fixture
def only_fake(fake: CouchbaseFake | None) -> CouchbaseFake:
    """The fake, for a test that needs its knobs."""
    if fake is None:
        pytest.skip("needs the fake Couchbase (KERNEL_TEST_COUCHBASE_URL names a real cluster)")
    fake.start()
    return fake
