"""The pool conformance suite against every std pool, built through its registered PoolSpec."""

from __future__ import annotations

import pytest

from kernel.std.pools import kernel_pools
from kernel.testing.pool import PoolMaker, PoolSuite

SPECS = {spec.name: spec for spec in kernel_pools()}


class TestSolo(PoolSuite):
    @pytest.fixture
    def make_pool(self) -> PoolMaker:
        return SPECS["solo"].factory


class TestThreads(PoolSuite):
    @pytest.fixture
    def make_pool(self) -> PoolMaker:
        return SPECS["threads"].factory


class TestAsyncio(PoolSuite):
    @pytest.fixture
    def make_pool(self) -> PoolMaker:
        return SPECS["asyncio"].factory


class TestPrefork(PoolSuite):
    @pytest.fixture
    def make_pool(self) -> PoolMaker:
        return SPECS["prefork"].factory
