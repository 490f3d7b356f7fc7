"""kernel's conformance suite for result stores, on PostgreSQL and SQLite through Django."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from kernel import App
from kernel.interfaces import ResultStore
from kernel.testing import ResultStoreSuite

pytestmark = pytest.mark.integration


class TestDjangoResultStore(ResultStoreSuite):
    expiry_grace = 2.0

    @pytest.fixture
    def store(self, alias: str, make_app: Callable[..., App]) -> Iterator[ResultStore]:
        store = make_app(f"django-db://{alias}").backend.store
        assert store is not None
        yield store
        store.close()
