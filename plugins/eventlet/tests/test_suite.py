"""kernel's pool contract (`PoolSuite`) and the green pools' (`GreenPoolSuite`), on the eventlet
pool, in this monkey-patched process."""

from __future__ import annotations

import pytest

from kernel.testing.green import GreenPoolSuite
from kernel.testing.pool import PoolMaker
from kernel_eventlet.pool import EventletPool

pytestmark = pytest.mark.integration


class TestEventletPool(GreenPoolSuite):
    @pytest.fixture
    def make_pool(self) -> PoolMaker:
        return EventletPool
