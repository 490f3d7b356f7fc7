"""Shared fixtures: an Elasticsearch server and an OpenSearch server of the tests' own (noida-db
and osmem-server, started once each on free ports) or the real services the environment names
(``KERNEL_TEST_ELASTICSEARCH_URL``, ``KERNEL_TEST_OPENSEARCH_URL``: each test then uses an index
of its own there); the Redis broker the interop tests run Celery and kernel on; real Celery
workers.

Without the servers or a reachable Redis the tests that need them skip, except under CI (``CI``
set), where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from kernel.testing.workers import CeleryWorkerProcess, celery_workers
from kernel_elasticsearch.store import ElasticsearchStore, OpenSearchStore, SearchStore
from kernel_elasticsearch.testing import NoidaServer, OsmemServer
from kernel_redis.testing import reachable

REDIS_URL = os.environ.get("KERNEL_REDIS_TEST_URL", "redis://127.0.0.1:6379/13")


def _base(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.fixture(scope="session")
def elasticsearch_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``scheme://[user:pass@]host:port`` of the Elasticsearch server the tests use."""
    if given := os.environ.get("KERNEL_TEST_ELASTICSEARCH_URL"):
        yield _base(given)
        return
    with NoidaServer(tmp_path_factory.mktemp("noida")) as server:
        yield _base(server.url(""))


@pytest.fixture(scope="session")
def opensearch_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if given := os.environ.get("KERNEL_TEST_OPENSEARCH_URL"):
        yield _base(given)
        return
    with OsmemServer(tmp_path_factory.mktemp("osmem")) as server:
        yield _base(server.url(""))


def _fresh_index(base: str, kind: type[SearchStore]) -> Iterator[str]:
    """An index of the test's own (the server creates it on the first write), dropped after."""
    url = f"{base}/results-{uuid.uuid4().hex[:12]}"
    yield url
    store = kind(url, {})
    try:
        store._client().indices.delete(index=store.index)
    except Exception:  # noqa: BLE001 - never written, or the server is gone: nothing to drop
        pass
    finally:
        store.close()


@pytest.fixture
def elasticsearch_url(elasticsearch_base: str) -> Iterator[str]:
    yield from _fresh_index(elasticsearch_base, ElasticsearchStore)


@pytest.fixture
def opensearch_url(opensearch_base: str) -> Iterator[str]:
    yield from _fresh_index(opensearch_base, OpenSearchStore)


@pytest.fixture(scope="session")
def redis_url() -> str:
    return reachable(REDIS_URL, "Redis, the interop tests' broker,")


@pytest.fixture
def celery_worker(tmp_path: Path) -> Iterator[Callable[[str, str, str], CeleryWorkerProcess]]:
    """Start a real Celery worker (solo pool) on a queue from module source: call it with
    ``(module name, source, queue)``; its log is ``<module>.log`` in the test's tmp_path."""
    with celery_workers(tmp_path) as start:
        yield start
