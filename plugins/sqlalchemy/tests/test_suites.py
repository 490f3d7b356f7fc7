"""kernel's conformance suite for result stores, on PostgreSQL, MariaDB and SQLite."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from kernel.testing import ResultStoreSuite
from kernel_sqlalchemy.results import SqlResultStore

pytestmark = pytest.mark.integration


class TestSqlResultStore(ResultStoreSuite):
    expiry_grace = 2.0

    @pytest.fixture
    def store(self, db_url: str,
              make_store: Callable[..., SqlResultStore]) -> Iterator[SqlResultStore]:
        store = make_store(db_url)
        yield store
        store.close()
