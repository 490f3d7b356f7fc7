"""kernel's conformance suite for result stores, on nx-27017."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from kernel.testing import ResultStoreSuite
from kernel_mongodb.results import MongoResultStore

pytestmark = pytest.mark.integration


class TestMongoResultStore(ResultStoreSuite):
    @pytest.fixture
    def store(self, mongo_url: str,
              make_store: Callable[..., MongoResultStore]) -> Iterator[MongoResultStore]:
        store = make_store(mongo_url)
        yield store
        store.close()
