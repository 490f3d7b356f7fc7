"""The kernel's conformance suite against moto's server and dynalite (which has no time-to-live
API: expiry is the store's own reading of ``ttl`` there): every guarantee of the result-store
contract, the atomic ``UpdateItem ADD`` counter and chords included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kernel.testing.results import ResultStoreSuite
from kernel_dynamodb.store import DynamoDBStore


class TestOnMoto(ResultStoreSuite):
    #: ``ttl`` is whole seconds (as Celery and DynamoDB keep it), rounded up.
    expiry_grace = 6.0

    @pytest.fixture
    def store(self, dynamodb_url: str) -> Iterator[DynamoDBStore]:
        s = DynamoDBStore(dynamodb_url, {})
        yield s
        s.close()


class TestOnDynalite(ResultStoreSuite):
    expiry_grace = 6.0

    @pytest.fixture
    def store(self, dynalite_url: str) -> Iterator[DynamoDBStore]:
        s = DynamoDBStore(dynalite_url, {})
        yield s
        s.close()
