"""The kernel's conformance suite against noida-db (Elasticsearch 8's REST API) and osmem-server
(OpenSearch's), or the real services named by ``KERNEL_TEST_ELASTICSEARCH_URL`` and
``KERNEL_TEST_OPENSEARCH_URL``: every guarantee of the result-store contract, expiry by a stored
deadline with a cleanup and the sequence-number-checked counter included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kernel.testing.results import ResultStoreSuite
from kernel_elasticsearch.store import ElasticsearchStore, OpenSearchStore


class TestElasticsearchStore(ResultStoreSuite):
    @pytest.fixture
    def store(self, elasticsearch_url: str) -> Iterator[ElasticsearchStore]:
        s = ElasticsearchStore(elasticsearch_url, {})
        yield s
        s.close()


class TestOpenSearchStore(ResultStoreSuite):
    @pytest.fixture
    def store(self, opensearch_url: str) -> Iterator[OpenSearchStore]:
        s = OpenSearchStore(opensearch_url, {})
        yield s
        s.close()
