"""The kernel's conformance suite against moto's server and dynalite (which has no time-to-live
API: expiry is the store's own reading of ``ttl`` there): every guarantee of the result-store
contract, the atomic ``UpdateItem ADD`` counter and chords included. On moto the store is the
one an App makes (with the app's result serializer: chords save their header as Celery's
workers read it); on dynalite one made from the URL alone."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from kernel.testing.results import ResultStoreSuite
from kernel_dynamodb.store import DynamoDBStore


class TestOnMoto(ResultStoreSuite):
    #: ``ttl`` is whole seconds (as Celery and DynamoDB keep it), rounded up.
    expiry_grace = 6.0

    @pytest.fixture
    def store(self, dynamodb_url: str,
              make_store: Callable[..., DynamoDBStore]) -> DynamoDBStore:
        return make_store(dynamodb_url)


class TestOnDynalite(ResultStoreSuite):
    expiry_grace = 6.0

    @pytest.fixture
    def store(self, dynalite_url: str) -> Iterator[DynamoDBStore]:
        s = DynamoDBStore(dynalite_url, {})
        yield s
        s.close()
