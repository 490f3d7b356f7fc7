"""Shared fixtures: the ArangoDB server the tests run against, and a collection of each test's
own.

No ArangoDB runs where these tests run: they answer the parts of ArangoDB's HTTP API that
python-arango calls for the store from `kernel_arangodb.testing.ArangoFake` (a thread of the
test process, on a free loopback port). With
``KERNEL_TEST_ARANGODB_URL=arangodb://root:password@host:8529/database`` they run against that
real server instead (the database must exist; each test makes a collection of its own there);
the tests that need the fake's own knobs skip there.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from kernel_arangodb.testing import ArangoFake

REAL = os.environ.get("KERNEL_TEST_ARANGODB_URL", "").rstrip("/")


@pytest.fixture(scope="session")
def fake() -> Iterator[ArangoFake | None]:
    if REAL:
        yield None
        return
    with ArangoFake(databases=("celery",), ttl_frequency=0.2) as server:
        yield server


@pytest.fixture
def arangodb_url(fake: ArangoFake | None) -> str:
    """A collection of the test's own (made by a store with ``arangodb_create_collection``)."""
    collection = f"results_{uuid.uuid4().hex[:12]}"
    return f"{REAL}/{collection}" if REAL else fake.url("celery", collection)  # type: ignore[union-attr]


@pytest.fixture
def only_fake(fake: ArangoFake | None) -> ArangoFake:
    """The fake, for a test that needs its knobs (stopping it, reading its documents)."""
    if fake is None:
        pytest.skip("needs the fake ArangoDB (KERNEL_TEST_ARANGODB_URL names a real server)")
    return fake
