"""kernel's pool contract (`PoolSuite`) and the green pools' (`GreenPoolSuite`), on the gevent
pool, in this monkey-patched process."""

from __future__ import annotations

import pytest

from kernel.testing.green import GreenPoolSuite
from kernel.testing.pool import PoolMaker
from kernel_gevent.pool import GeventPool

pytestmark = pytest.mark.integration


class TestGeventPool(GreenPoolSuite):
    @pytest.fixture
    def make_pool(self) -> PoolMaker:
        return GeventPool
