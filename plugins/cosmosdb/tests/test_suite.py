"""The kernel's conformance suite against @vercel/cosmosdb-server over HTTPS: every guarantee of
the result-store contract, expiry by a stored deadline (the emulator has no TTL) and the
ETag-checked counter included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kernel.testing.results import ResultStoreSuite
from kernel_cosmosdb.store import CosmosDBStore


class TestCosmosDBStore(ResultStoreSuite):
    @pytest.fixture
    def store(self, cosmos_url: str) -> Iterator[CosmosDBStore]:
        s = CosmosDBStore(cosmos_url, {})
        # The client's start (the account read, the database and container made: ~0.3 s on a
        # loaded machine) happens once per process; done here, so that the latency bounds
        # of the wait tests measure polling, not that.
        s.get("warm-up")
        yield s
        s.close()
