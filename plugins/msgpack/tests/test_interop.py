"""Celery 5 and kernel exchange msgpack tasks and results on Redis, both ways: a kernel
client's ``application/x-msgpack`` task runs on a real Celery worker and its msgpack result
reads back in kernel; a Celery client's runs on a kernel worker. Bytes travel as themselves."""

from __future__ import annotations

import os
from typing import Any

import pytest

from kernel.testing.interop import SerializerInteropSuite

from conftest import REDIS_URL
from kernel_redis.testing import reachable

if not os.environ.get("CI"):  # under CI a missing Celery is a failure, not a skip
    pytest.importorskip("celery", reason="interop tests need celery")

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def broker() -> str:
    return reachable(REDIS_URL, "Redis, the interop tests' broker,")


class TestCeleryInterop(SerializerInteropSuite):
    serializer = "msgpack"
    left: list[Any] = [b"\xff\x00raw", "żółw", 2**63, -1.5, None, {"k": [True, b""]}]
    right: list[Any] = [b"more", {"nested": {"bytes": b"\x80"}}]
