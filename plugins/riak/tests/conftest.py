"""Shared fixtures: the Riak node the tests run against, a bucket of each test's own, and the
Redis broker (127.0.0.1:6379/14) the restart test's worker processes use.

No Riak runs where these tests run: they answer Riak's HTTP API from `kernel_riak.testing
.RiakFake` (a thread of the test process, on a free loopback port). With
``KERNEL_TEST_RIAK_URL=riak://host:8098`` they run against that real node instead, each test
in a bucket of its own (tests that need the fake's own knobs skip there).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from kernel_redis.testing import reachable
from kernel_riak.testing import RiakFake

REAL = os.environ.get("KERNEL_TEST_RIAK_URL", "").rstrip("/")
REDIS_URL = os.environ.get("KERNEL_REDIS_TEST_URL", "redis://127.0.0.1:6379/14")


@pytest.fixture(scope="session")
def fake() -> Iterator[RiakFake | None]:
    if REAL:
        yield None
        return
    with RiakFake() as server:
        yield server


@pytest.fixture
def riak_url(fake: RiakFake | None) -> str:
    bucket = f"results-{uuid.uuid4().hex[:12]}"
    return f"{REAL}/{bucket}" if REAL else fake.url(bucket)  # type: ignore[union-attr]


@pytest.fixture
def only_fake(fake: RiakFake | None) -> RiakFake:
    """The fake, for a test that needs its knobs (credentials, stopping it)."""
    if fake is None:
        pytest.skip("needs the fake Riak (KERNEL_TEST_RIAK_URL names a real node)")
    return fake


@pytest.fixture(scope="session")
def redis_url() -> str:
    return reachable(REDIS_URL, "Redis, the restart test's broker,")
