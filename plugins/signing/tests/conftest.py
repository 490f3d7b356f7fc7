"""Shared fixtures: a small PKI made on the spot (a CA, a trusted signer, a second trusted signer,
an expired one, and one from another CA that the store does not hold), and the Redis broker the
interop tests run Celery and kernel on.

Without a reachable Redis (``KERNEL_REDIS_TEST_URL``, db 11 by default) the interop tests skip,
except under CI, where that is a failure.
"""

from __future__ import annotations

import os

import pytest

from kernel_signing.testing import Pki, make_pki

REDIS_URL = os.environ.get("KERNEL_REDIS_TEST_URL", "redis://127.0.0.1:6379/11")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def redis_url() -> str:
    from kernel_redis.testing import reachable

    return reachable(REDIS_URL, "the interop tests' broker")
