"""Celery 5 and kernel exchange yaml tasks and results on Redis, both ways: a kernel
client's ``application/x-yaml`` task runs on a real Celery worker and its yaml result
reads back in kernel; a Celery client's runs on a kernel worker. Bytes, datetimes, dates, sets,
big ints and int keys travel as themselves."""

from __future__ import annotations

import datetime as dt
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
    serializer = "yaml"
    left: list[Any] = [b"\xff\x00raw", "żółw", 2**100, -1.5, None, {1: [True, b""]}, {3, "x"}]
    right: list[Any] = [dt.datetime(2026, 12, 7, 23, 45, 1, 250, tzinfo=dt.timezone.utc),
                        dt.datetime(2026, 12, 7, 1, 2), dt.date(2026, 12, 7), "yes", "0x1F"]
