"""Real ``kernel worker -P gevent`` processes on SQLite, Redis and RabbitMQ (conftest's
``broker``): patched before the app is imported, tasks waiting on sockets together, time
limits that stop a CPU loop, cold shutdown giving running tasks back, prefetch by slot."""

from __future__ import annotations

import pytest

from kernel.testing.green import GreenWorkerSuite

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


class TestGeventWorker(GreenWorkerSuite):
    pool = "gevent"
