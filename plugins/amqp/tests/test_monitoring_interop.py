"""Celery's real monitoring tools and kernel workers on one RabbitMQ (`MonitoringInteropSuite`):
``celery inspect``, ``celery events --dump`` and Flower see and drive kernel workers, and a
Celery worker shows beside a kernel one. Results (revocations among them) go to SQLite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from kernel.testing.monitoring import MonitoringInteropSuite

pytestmark = pytest.mark.timeout(180)


class TestAmqpMonitoringInterop(MonitoringInteropSuite):
    # Celery shares kernel's queues when it declares them with the same priority range.
    celery_config: ClassVar[dict[str, Any]] = {"task_queue_max_priority": 10}

    @pytest.fixture
    def broker_url(self, url: str) -> str:
        return url

    @pytest.fixture
    def results_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'results.db'}"

    @pytest.fixture
    def queue(self, new_queue: Callable[[str], str]) -> str:
        return new_queue("mon")

    @pytest.fixture
    def celery_queue(self, new_queue: Callable[[str], str]) -> str:
        return new_queue("mon-celery")
