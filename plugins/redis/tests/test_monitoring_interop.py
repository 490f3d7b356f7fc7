"""Celery's real monitoring tools and kernel workers on one Redis (`MonitoringInteropSuite`):
``celery inspect``, ``celery events --dump`` and Flower see and drive kernel workers, and a
Celery worker shows beside a kernel one.

Remote control and events are broadcast per database on Redis, so these tests use a database
of their own (14 on the tests' Redis server): the other tests' workers stay out of the replies.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest

from kernel.testing.monitoring import MonitoringInteropSuite

pytestmark = pytest.mark.timeout(180)


class TestRedisMonitoringInterop(MonitoringInteropSuite):
    @pytest.fixture
    def broker_url(self, redis_url: str) -> str:
        return urlunsplit(urlsplit(redis_url)._replace(path="/14"))

    @pytest.fixture
    def results_url(self, broker_url: str) -> str:
        return broker_url
