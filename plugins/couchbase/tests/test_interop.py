"""Celery 5.7's Couchbase backend and kernel's store, both on the real SDK 4 with its C++ core
replaced by the fake of `kernel_couchbase.testing` (no Couchbase Server runs here): the bytes
and flags each writes for a record are compared through the same fake, and kernel reads what
Celery's backend writes.

Celery's backend does not run whole on SDK 4 (4.6 here), and these tests say where, each
failing the day Celery fixes it: it connects with ``Cluster(uri, PasswordAuthenticator(...))``
(SDK 4 takes the authenticator inside ``ClusterOptions``: "Authenticator is mandatory"), reads
with ``GetResult.content`` (SDK 4 has ``.value``) and stores an expiry as ``ttl=`` (SDK 4 takes
``expiry=``). So the comparison gives Celery's backend the connection it means to make, made
as SDK 4 takes it, and stores with ``result_expires = None``; everything else is Celery's code."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import celery
import pytest
from couchbase.auth import PasswordAuthenticator
from couchbase.cluster import Cluster
from couchbase.exceptions import InvalidArgumentException
from couchbase.options import ClusterOptions

from kernel import App
from kernel_couchbase.testing import CouchbaseFake



@pytest.fixture
def celery_app(couchbase_url: str, only_fake: CouchbaseFake) -> Iterator[celery.Celery]:
    app = celery.Celery("celery-side", broker="memory://", backend=couchbase_url)
    app.conf.result_expires = None  # Celery's ttl= is refused by SDK 4 (below)
    yield app
    app.close()


@pytest.fixture
def connected(celery_app: celery.Celery, couchbase_url: str) -> Iterator[Any]:
    """Celery's backend, given the connection its _get_connection means to make."""
    backend = celery_app.backend
    parts = urlsplit(couchbase_url)
    cluster = Cluster(f"couchbase://{parts.hostname}", ClusterOptions(PasswordAuthenticator(
        unquote(parts.username or ""), unquote(parts.password or ""))))
    backend._connection = cluster.bucket(backend.bucket).default_collection()
    yield backend
    cluster.close()


def test_celerys_backend_cannot_connect_on_sdk_4(celery_app: celery.Celery) -> None:
    with pytest.raises(InvalidArgumentException, match="Authenticator is mandatory"):
        celery_app.backend.get("celery-task-meta-x")


def test_celery_and_kernel_write_the_same_document(connected: Any, couchbase_url: str,
                                                   only_fake: CouchbaseFake) -> None:
    celerys, kernels = str(uuid.uuid4()), str(uuid.uuid4())
    connected.store_result(celerys, 42, "SUCCESS")
    kapp = App("kernel-side", broker="memory://", results=couchbase_url,
               config={"result_expires": None})
    try:
        kapp.backend.store_result(kernels, "SUCCESS", 42)
        items = only_fake.items("results")
        theirs, ours = items[f"celery-task-meta-{celerys}"], items[f"celery-task-meta-{kernels}"]
        assert theirs.flags == ours.flags, "both flagged JSON by their transcoders"
        assert theirs.expires_at is None and ours.expires_at is None
        their_record, our_record = json.loads(json.loads(theirs.value)), \
            json.loads(json.loads(ours.value))
        assert their_record.keys() <= our_record.keys() | {"date_done"}
        assert (their_record["status"], their_record["result"]) == \
            (our_record["status"], our_record["result"]) == ("SUCCESS", 42)
        assert kapp.AsyncResult(celerys).get(timeout=5) == 42, \
            "kernel reads what Celery's backend wrote"
    finally:
        kapp.close()


def test_celerys_backend_cannot_read_on_sdk_4(connected: Any, couchbase_url: str) -> None:
    """What kernel writes decodes with the SDK's default transcoder to the record's text, which
    is what Celery's get returns, but Celery reads ``.content``, which SDK 4's GetResult does
    not have."""
    task_id = str(uuid.uuid4())
    kapp = App("kernel-side", broker="memory://", results=couchbase_url)
    try:
        kapp.backend.store_result(task_id, "SUCCESS", 7)
    finally:
        kapp.close()
    found = connected.connection.get(f"celery-task-meta-{task_id}")
    assert connected.decode_result(found.value)["result"] == 7, \
        "Celery decodes the value SDK 4 hands back for what kernel wrote"
    with pytest.raises(AttributeError, match="'GetResult' object has no attribute 'content'"):
        connected.get(f"celery-task-meta-{task_id}")


def test_celerys_backend_cannot_store_with_an_expiry_on_sdk_4(connected: Any) -> None:
    connected.expires = 3600
    with pytest.raises(AttributeError, match="no attribute 'ttl'"):
        connected.store_result(str(uuid.uuid4()), 1, "SUCCESS")
