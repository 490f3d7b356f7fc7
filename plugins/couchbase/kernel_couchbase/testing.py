"""A fake Couchbase cluster for tests, where no Couchbase Server runs, at the narrowest boundary
the Python SDK has: the adapter between the SDK's Python layer and its C++ core
(``couchbase.logic.client_adapter.ClientAdapter``, which the SDK's own tests skip connecting
with ``skip_connect``). Everything above it is the real SDK 4 — ``Cluster``, ``Bucket``,
``Collection``, the options and their conversions (an expiry ``timedelta`` becomes whole
seconds), the transcoders, the request objects, the result classes — so kernel's store and
Celery's backend call the SDK exactly as they would against a server::

    from kernel_couchbase.testing import CouchbaseFake

    fake = CouchbaseFake(buckets=("results",))
    with fake.installed():
        fake.url("results")       # couchbase://Administrator:password@127.0.0.1/results
        fake.items("results")     # {key: Item(value, flags, cas, expires_at)}

What the fake core answers, as Couchbase Server's key/value engine does for one document: get,
insert (``DocumentExistsException`` where a live document is), upsert, replace and remove (each
with a CAS precondition where one is given: ``CasMismatchException``; a missing document
``DocumentNotFoundException``), each applied atomically under one lock, every mutation a new CAS;
an expiry as the SDK sends it (0: none; under 30 days: seconds from now; else a Unix time),
after which the document reads as missing, and which a mutation without ``preserve_expiry``
replaces. Opening a bucket that does not exist raises ``BucketNotFoundException``; wrong
credentials ``AuthenticationException`` when the cluster connects; a stopped fake
``UnAmbiguousTimeoutException`` (at once: the fake does not wait the SDK's timeouts) — nothing
was sent. Only the default scope and collection exist. Nothing else of Couchbase is here: no
counters (``binary()``), sub-document operations, queries, durability, replicas, or management.

It depends on the SDK's internal adapter, so it checks the SDK's version: 4.6.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock
from urllib.parse import quote

import couchbase
from couchbase.exceptions import (
    AuthenticationException,
    BucketNotFoundException,
    CasMismatchException,
    DocumentExistsException,
    DocumentNotFoundException,
    ScopeNotFoundException,
    UnAmbiguousTimeoutException,
)
from couchbase.logic import cluster_impl
from couchbase.logic.bucket_types import CloseBucketRequest, OpenBucketRequest
from couchbase.logic.client_adapter import ClientAdapter
from couchbase.logic.cluster_types import CloseConnectionRequest
from couchbase.logic.operation_types import KeyValueOperationCode as Op

__all__ = ["CouchbaseFake", "Item"]

#: the SDK versions whose internal adapter the fake stands in for.
SDK_SERIES = "4.6."
THIRTY_DAYS = 30 * 24 * 3600


@dataclass(frozen=True)
class Item:
    """One document as the server keeps it: the bytes and flags the transcoder made, its CAS
    and when it expires (Unix time; None: never)."""

    value: bytes
    flags: int
    cas: int
    expires_at: float | None


@dataclass(frozen=True)
class _CoreResult:
    """What the C++ core hands the SDK's result classes: their ``raw_result``."""

    raw_result: dict[str, Any]


class CouchbaseFake:
    """A fake cluster (see the module's docstring): `buckets` exist, `credentials` are the
    only ones it takes."""

    def __init__(self, *, buckets: tuple[str, ...] = ("results",),
                 credentials: tuple[str, str] = ("Administrator", "password")) -> None:
        if not couchbase.__version__.startswith(SDK_SERIES):
            raise RuntimeError(f"the fake Couchbase stands in for the internal adapter of the "
                               f"SDK {SDK_SERIES}x, not {couchbase.__version__}")
        self.credentials = credentials
        self.up = True
        self._lock = threading.Lock()
        self._buckets: dict[str, dict[str, Item]] = {b: {} for b in buckets}
        self._cas = 1_700_000_000_000_000_000

    def url(self, bucket: str, *, password: str | None = None) -> str:
        user, secret = self.credentials
        secret = secret if password is None else password
        return f"couchbase://{user}:{quote(secret, safe='')}@127.0.0.1/{bucket}"

    def items(self, bucket: str) -> dict[str, Item]:
        """The bucket's live documents now."""
        with self._lock:
            now = time.time()
            return {k: v for k, v in self._buckets[bucket].items() if _live(v, now)}

    def add_bucket(self, name: str) -> None:
        with self._lock:
            self._buckets.setdefault(name, {})

    def stop(self) -> None:
        """The cluster goes away: connecting and every operation time out, unsent."""
        self.up = False

    def start(self) -> None:
        self.up = True

    @contextmanager
    def installed(self) -> Iterator[CouchbaseFake]:
        """For the block, every ``Cluster`` the SDK makes talks to this fake."""
        fake = self

        class Adapter(_FakeAdapter):
            cluster = fake

        with mock.patch.object(cluster_impl, "ClientAdapter", Adapter):
            yield self

    # ------------------------------------------------------------------ the core

    def connect(self, auth: dict[str, Any]) -> None:
        if not self.up:
            raise UnAmbiguousTimeoutException(message="unambiguous_timeout (connect)")
        if (auth.get("username"), auth.get("password")) != self.credentials:
            raise AuthenticationException(message="authentication_failure")

    def open_bucket(self, name: str) -> None:
        if not self.up:
            raise UnAmbiguousTimeoutException(message="unambiguous_timeout (open bucket)")
        with self._lock:
            if name not in self._buckets:
                raise BucketNotFoundException(message=f"bucket_not_found ({name})")

    def execute(self, opcode: int, req: Any) -> _CoreResult:
        if not self.up:
            raise UnAmbiguousTimeoutException(message="unambiguous_timeout")
        key = str(req.key)
        if (req.scope, req.collection) != ("_default", "_default"):
            raise ScopeNotFoundException(message=f"scope_not_found ({req.scope})")
        with self._lock:
            docs = self._buckets.get(str(req.bucket))
            if docs is None:
                raise BucketNotFoundException(message=f"bucket_not_found ({req.bucket})")
            now = time.time()
            current = docs.get(key)
            if current is not None and not _live(current, now):
                del docs[key]
                current = None
            cas = int(getattr(req, "cas", 0) or 0)
            if opcode == Op.Get:
                if current is None:
                    raise DocumentNotFoundException(message="document_not_found")
                return _CoreResult({"value": current.value, "flags": current.flags,
                                    "cas": current.cas})
            if opcode == Op.Remove:
                if current is None:
                    raise DocumentNotFoundException(message="document_not_found")
                if cas and cas != current.cas:
                    raise CasMismatchException(message="cas_mismatch")
                del docs[key]
                return _CoreResult({"cas": self._next_cas()})
            if opcode not in (Op.Insert, Op.Upsert, Op.Replace):
                raise NotImplementedError(f"the fake Couchbase does not model {Op(opcode).name}")
            if opcode == Op.Insert and current is not None:
                raise DocumentExistsException(message="document_exists")
            if opcode == Op.Replace:
                if current is None:
                    raise DocumentNotFoundException(message="document_not_found")
                if cas and cas != current.cas:
                    raise CasMismatchException(message="cas_mismatch")
            expires_at = _deadline(int(getattr(req, "expiry", 0) or 0), now)
            if getattr(req, "preserve_expiry", False) and current is not None:
                expires_at = current.expires_at
            stored = Item(bytes(req.value), int(req.flags), self._next_cas(), expires_at)
            docs[key] = stored
            return _CoreResult({"cas": stored.cas})

    def _next_cas(self) -> int:
        self._cas += 1
        return self._cas


def _live(item: Item, now: float) -> bool:
    return item.expires_at is None or item.expires_at > now


def _deadline(expiry: int, now: float) -> float | None:
    """The server's reading of the expiry the SDK sends."""
    if expiry == 0:
        return None
    return now + expiry if expiry < THIRTY_DAYS else float(expiry)


class _FakeAdapter(ClientAdapter):  # type: ignore[misc]  # the SDK ships no types
    """The SDK's adapter with the C++ core replaced by `cluster` (a `CouchbaseFake`)."""

    cluster: CouchbaseFake

    def __init__(self, connect_req: Any, **kwargs: Any) -> None:
        super().__init__(connect_req, skip_connect="TEST_SKIP_CONNECT")
        self.cluster.connect(connect_req.auth)
        self._fake_connected = True

    @property
    def connected(self) -> bool:
        return getattr(self, "_fake_connected", False)

    def execute_bucket_request(self, req: Any) -> Any:
        self._ensure_not_closed()
        if isinstance(req, OpenBucketRequest):
            self.cluster.open_bucket(req.bucket_name)
            return None
        if isinstance(req, CloseBucketRequest):
            return None
        raise NotImplementedError(f"the fake Couchbase does not model {type(req).__name__}")

    def execute_cluster_request(self, req: Any) -> Any:
        if isinstance(req, CloseConnectionRequest):
            self._fake_connected = False
            return None
        raise NotImplementedError(f"the fake Couchbase does not model {type(req).__name__}")

    def close_connection(self) -> None:
        self._fake_connected = False
        self._closed = True

    def execute_collection_request(self, opcode: Any, req: Any,
                                   obs_handler: Any = None) -> Any:
        self._ensure_not_closed()
        if isinstance(req, list):
            raise NotImplementedError("the fake Couchbase does not model multi operations")
        return self.cluster.execute(int(opcode), req)
