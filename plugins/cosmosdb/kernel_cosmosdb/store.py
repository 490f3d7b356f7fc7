"""The Azure Cosmos DB (SQL API) result store, on Microsoft's azure-cosmos client, in Celery's
cosmosdbsql backend's layout: one item per key, ``{"id": "celery-task-meta-<id>", "value":
"<record>"}``, partitioned by ``/id``, in the database and container Celery's settings name
(both created on first use, as Celery's backend creates them).

Expiry: an item stored with an expiry carries Cosmos DB's own ``ttl`` (the container is
created with ``default_ttl = -1``, which lets items carry one) and ``kernel_expires`` (Unix
time). Reads treat an item past ``kernel_expires`` as absent whether or not the service has
removed it yet (a container made without TTL, an emulator that never expires), and `cleanup`
(``kernel results cleanup``) deletes what remains. Celery's readers ignore both fields.

Counters and `add` are conditional writes: a create fails with 409 where an item is, a
replace sent with the item's ETag (If-Match) fails with 412 once someone else wrote it; a
counter that lost reads again and retries, so concurrent counts are never lost.

Each process has its own client (a forked child makes its own), and every call retries, with
a backoff, what is safe to retry: a throttled (429) or unavailable (503) answer, honouring the
service's ``x-ms-retry-after-ms``, up to ``cosmosdbsql_max_retry_attempts`` times within
``cosmosdbsql_max_retry_wait_time`` seconds; an unreachable account for ``connection_timeout``.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from azure.core import MatchConditions
from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.core.pipeline.transport import RequestsTransport
from azure.cosmos import ContainerProxy, CosmosClient, PartitionKey
from azure.cosmos._retry_options import RetryOptions  # azure-cosmos exports it nowhere else
from azure.cosmos.documents import ConnectionPolicy
from azure.cosmos.exceptions import CosmosHttpResponseError

from kernel.interfaces.results import ResultStore
from kernel.plugin import (
    ConfigurationError,
    ConnectionFailed,
    KernelError,
    Options,
    retry_within,
)
from kernel_cosmosdb.plugin import RESULT_STORE_CAPABILITIES
from kernel_cosmosdb.settings import CosmosSettings

T = TypeVar("T")

#: what marks an id kernel had to change (Cosmos DB refuses some ids; see `doc_id`).
ESCAPE = "kernel~"
#: the longest id Cosmos DB accepts.
MAX_ID = 255
#: answers that mean "try again later": throttled, and unavailable.
BUSY = (429, 503)

SELECT_BY_ID = "SELECT * FROM c WHERE c.id = @id"
SELECT_EXPIRED = ("SELECT c.id, c._etag FROM c WHERE IS_DEFINED(c.kernel_expires) "
                  "AND c.kernel_expires <= @now")


def doc_id(key: str) -> str:
    """The item id for `key`: the key itself, as Celery stores it, unless Cosmos DB would
    refuse it (``/ \\ ? #``, a trailing space, only dots, over 255 characters) or it starts
    with the escape: then the escape and the key's SHA-256."""
    if (len(key) > MAX_ID or any(c in key for c in "/\\?#") or key != key.rstrip()
            or not key.strip(".") or key.startswith(ESCAPE)):
        return ESCAPE + hashlib.sha256(key.encode()).hexdigest()
    return key


def encode_value(value: bytes) -> dict[str, Any]:
    """The item fields for `value`: text as Celery stores it, other bytes as base64."""
    try:
        return {"value": value.decode()}
    except UnicodeDecodeError:
        return {"value": base64.b64encode(value).decode(), "kernel_base64": True}


def live(item: dict[str, Any] | None, now: float) -> bool:
    if item is None:
        return False
    expires = item.get("kernel_expires")
    return not isinstance(expires, (int, float)) or expires > now


class _Again(Exception):
    """One attempt failed in a way worth another (busy, unreachable, a container recreated)."""


class CosmosDBStore(ResultStore):
    """``cosmosdbsql://:KEY@ACCOUNT.documents.azure.com`` (see `kernel_cosmosdb.settings` for
    the URL, the emulator form and the options).

    Settings: ``cosmosdbsql_database_name`` (``celerydb``), ``cosmosdbsql_collection_name``
    (``celerycol``), ``cosmosdbsql_consistency_level`` (``Session``),
    ``cosmosdbsql_max_retry_attempts`` (9), ``cosmosdbsql_max_retry_wait_time`` (30 s);
    ``connection_timeout`` (the app's ``broker_connection_timeout``) bounds a call on an
    unreachable account before `ConnectionFailed`.
    """

    capabilities = RESULT_STORE_CAPABILITIES

    def __init__(self, url: str, options: Options | None = None) -> None:
        self.settings = CosmosSettings.parse(url, options)
        self._lock = threading.Lock()
        self._pid = -1
        self._client: CosmosClient | None = None
        self._items: ContainerProxy | None = None
        #: reads go by query (see `_read`): set where a missing item reads as 500.
        self._read_by_query = False

    def __repr__(self) -> str:
        s = self.settings
        return f"<CosmosDBStore {s.shown} {s.database}/{s.container}>"

    @property
    def _where(self) -> str:
        s = self.settings
        return f"Cosmos DB at {s.shown} (container {s.database}/{s.container})"

    # ------------------------------------------------------------------ the client

    def _container(self) -> ContainerProxy:
        """This process's container client, made on first use in each process (a forked
        child makes its own); the database and container are created if missing."""
        with self._lock:
            if self._items is not None and self._pid == os.getpid():
                return self._items
            s = self.settings
            # The client retries nothing itself: `_call` retries, within this store's budgets.
            policy = ConnectionPolicy()
            policy.RetryOptions = RetryOptions(max_retry_attempt_count=0)
            try:
                client = CosmosClient(
                    s.endpoint, credential=s.key, consistency_level=s.consistency_level,
                    connection_policy=policy, enable_endpoint_discovery=s.endpoint_discovery,
                    connection_timeout=s.connection_timeout, read_timeout=s.connection_timeout,
                    retry_total=0, retry_connect=0, retry_read=0, retry_status=0,
                    **_environment(s))
                database = client.create_database_if_not_exists(s.database)
                items = database.create_container_if_not_exists(
                    s.container, partition_key=PartitionKey(path="/id"), default_ttl=-1)
                paths = items.read().get("partitionKey", {}).get("paths")
            except CosmosHttpResponseError as exc:
                if exc.status_code == 403:
                    raise ConfigurationError(
                        f"{self._where} refused to create or read the database or container "
                        f"(403); create them (the container partitioned by /id), or use a key "
                        f"that may") from None
                raise
            if paths != ["/id"]:
                raise ConfigurationError(
                    f"{self._where} is partitioned by {paths}, not /id as Celery's backend "
                    f"makes it; name another container (cosmosdbsql_collection_name)")
            if self._client is not None and self._pid == os.getpid():
                self._client.close()
            self._client, self._items, self._pid = client, items, os.getpid()
            return items

    def _forget_container(self) -> None:
        """The container answered as if gone (deleted, an emulator restarted): make it again
        on the next attempt."""
        with self._lock:
            self._items = None

    def _call(self, what: str, op: Callable[[ContainerProxy], T], *, resend: bool = True,
              writes: bool = False) -> T:
        """`op(container)`, tried again while the account is busy (429, 503) or unreachable;
        `resend` False: an unreachable account only when nothing was sent. A write (`writes`)
        answered with 404 (or 500, with `resend`) makes sure its container exists, once, and
        is tried again."""
        s = self.settings
        busy = 0
        recreated = False
        unreachable_since: float | None = None
        again: tuple[type[BaseException], ...] = \
            (ServiceRequestError, ServiceResponseError) if resend else (ServiceRequestError,)

        def attempt() -> T:
            nonlocal busy, recreated, unreachable_since
            try:
                return op(self._container())
            except CosmosHttpResponseError as exc:
                status = exc.status_code
                if status in BUSY and busy < s.max_retry_attempts:
                    busy += 1
                    pause = _retry_after(exc)
                    if pause:
                        time.sleep(min(pause, s.max_retry_wait_time))
                    raise _Again(f"{status} ({'throttled' if status == 429 else 'unavailable'})"
                                 ) from exc
                if writes and not recreated and status in (404, 500):
                    # 404: nothing was written. 500 (the emulator's answer to a create in a
                    # container gone) may have been: sent again only where that is safe, but
                    # the container is checked on the next call either way.
                    recreated = True
                    self._forget_container()
                    if status == 404 or resend:
                        raise _Again(f"{status} on a write") from exc
                raise self._refused(what, exc) from None
            except again as exc:
                now = time.monotonic()
                unreachable_since = unreachable_since or now
                if now - unreachable_since < s.connection_timeout:
                    raise _Again(type(exc).__name__) from exc
                raise self._unreachable(exc) from None
            except (ServiceRequestError, ServiceResponseError) as exc:  # sent: effect unknown
                raise ConnectionFailed(
                    f"lost the connection to {self._where} during an update "
                    f"({type(exc).__name__}); check the account is reachable (a worker retries "
                    f"the task)") from None

        def failed(exc: BaseException) -> KernelError:
            return ConnectionFailed(
                f"{self._where} did not {what} within {s.max_retry_wait_time:g} s: the last "
                f"answer was {exc}; raise the container's throughput, or allow longer "
                f"(cosmosdbsql_max_retry_wait_time, connection_timeout)")

        budget = max(s.max_retry_wait_time, s.connection_timeout)
        return retry_within(budget, attempt, (_Again,), failed)

    def _refused(self, what: str, exc: CosmosHttpResponseError) -> KernelError:
        if exc.status_code == 401:
            return ConfigurationError(
                f"{self._where} refused the key (401); check the account key in the URL "
                f"(percent-encoded) and the machine's clock")
        if exc.status_code in BUSY:
            return ConnectionFailed(
                f"{self._where} was still busy ({exc.status_code}) after "
                f"{self.settings.max_retry_attempts} retries to {what}; raise the container's "
                f"throughput, or cosmosdbsql_max_retry_attempts")
        message = str(exc.message or "").splitlines()[0][:200] if exc.message else ""
        return KernelError(f"{self._where} could not {what}: {exc.status_code} {message}; "
                           f"check the account's diagnostics")

    def _unreachable(self, exc: BaseException) -> ConnectionFailed:
        s = self.settings
        return ConnectionFailed(
            f"cannot reach {self._where} within {s.connection_timeout:g} s "
            f"({type(exc).__name__}); check the account is up and the URL is right, or allow "
            f"longer (broker_connection_timeout)")

    # ------------------------------------------------------------------ items

    def _read(self, key: str) -> dict[str, Any] | None:
        item_id = doc_id(key)

        def read(container: ContainerProxy) -> dict[str, Any] | None:
            if not self._read_by_query:
                try:
                    return dict(container.read_item(item_id, partition_key=item_id))
                except CosmosHttpResponseError as exc:
                    if exc.status_code == 404:
                        return None
                    if exc.status_code != 500:
                        raise
            # @vercel/cosmosdb-server answers a read of a missing item with 500 (a TypeError
            # of its own): a query by id tells a missing item from a real failure. Once a 500
            # proved to be that, this store reads by query: one request a miss, not two.
            found = list(container.query_items(SELECT_BY_ID, partition_key=item_id,
                                               parameters=[{"name": "@id", "value": item_id}]))
            if not found:
                self._read_by_query = True
            return dict(found[0]) if found else None

        return self._call(f"read {item_id!r}", read)

    def _decode(self, item: dict[str, Any]) -> bytes:
        value = item.get("value")
        if isinstance(value, str):
            if not item.get("kernel_base64"):
                return value.encode()
            try:
                return base64.b64decode(value, validate=True)
            except ValueError:
                pass
        raise KernelError(
            f"the item {item.get('id')!r} of {self._where} holds no text 'value' "
            f"({type(value).__name__}) kernel or Celery could have written; delete it")

    @staticmethod
    def _body(key: str, value: bytes, expires: float | None) -> dict[str, Any]:
        body = {"id": doc_id(key), **encode_value(value)}
        if expires is not None:
            # Cosmos DB counts ttl from _ts, whole seconds rounded down: one more second keeps
            # an item from going before it is due.
            body["ttl"] = math.ceil(expires) + 1
            body["kernel_expires"] = time.time() + expires
        return body

    def _create(self, body: dict[str, Any], *, resend: bool = True) -> bool:
        """Create the item; False where one is already (409)."""
        def create(container: ContainerProxy) -> bool:
            try:
                container.create_item(body)
            except CosmosHttpResponseError as exc:
                if exc.status_code == 409:
                    return False
                raise
            return True

        return self._call(f"create {body['id']!r}", create, resend=resend, writes=True)

    def _replace(self, body: dict[str, Any], etag: str, *, resend: bool = True) -> bool:
        """Replace the item if it is still as read (`etag`); False if it changed (412) or went
        (404)."""
        def replace(container: ContainerProxy) -> bool:
            try:
                container.replace_item(body["id"], body, etag=etag,
                                       match_condition=MatchConditions.IfNotModified)
            except CosmosHttpResponseError as exc:
                if exc.status_code in (404, 412):
                    return False
                raise
            return True

        return self._call(f"replace {body['id']!r}", replace, resend=resend)

    # ------------------------------------------------------------------ the contract

    def set(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        for key, value in items:
            body = self._body(key, value, expires)

            def upsert(container: ContainerProxy, body: dict[str, Any] = body) -> None:
                container.upsert_item(body)

            self._call(f"store {body['id']!r}", upsert, writes=True)

    def add(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        for key, value in items:
            body = self._body(key, value, expires)
            while not self._create(body):
                found = self._read(key)
                if found is not None:
                    if not live(found, time.time()):
                        # Expired, not yet removed: replace exactly what was read; if another
                        # writer got there first, theirs stays.
                        self._replace(body, str(found["_etag"]))
                    break

    def get(self, key: str) -> bytes | None:
        item = self._read(key)
        return self._decode(item) if item is not None and live(item, time.time()) else None

    def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            item_id = doc_id(key)

            def remove(container: ContainerProxy, item_id: str = item_id) -> None:
                try:
                    container.delete_item(item_id, partition_key=item_id)
                except CosmosHttpResponseError as exc:
                    if exc.status_code != 404:
                        raise

            self._call(f"delete {item_id!r}", remove)

    def incr(self, key: str, amount: int = 1, expires: float | None = None) -> int:
        """Read, add, write conditionally: a create where nothing is, else a replace with the
        ETag read; a conflict (another count came first) reads again. Sent once: a write whose
        answer was lost is not sent again."""
        while True:
            item = self._read(key)
            current = int(self._decode(item)) if item is not None and live(item, time.time()) \
                else 0
            value = current + amount
            body = self._body(key, b"%d" % value, expires)
            written = self._create(body, resend=False) if item is None else \
                self._replace(body, str(item["_etag"]), resend=False)
            if written:
                return value

    def cleanup(self) -> dict[str, int]:
        """Delete every item past its ``kernel_expires`` that Cosmos DB's TTL has not removed
        yet; how many were. What ``kernel results cleanup`` runs for this store."""
        def expired(container: ContainerProxy) -> list[dict[str, Any]]:
            return [dict(i) for i in container.query_items(
                SELECT_EXPIRED, parameters=[{"name": "@now", "value": time.time()}],
                enable_cross_partition_query=True)]

        removed = 0
        for found in self._call("list expired items", expired):
            def remove(container: ContainerProxy, item: dict[str, Any] = found) -> bool:
                try:
                    container.delete_item(item["id"], partition_key=item["id"],
                                          etag=item["_etag"],
                                          match_condition=MatchConditions.IfNotModified)
                except CosmosHttpResponseError as exc:
                    if exc.status_code in (404, 412):  # gone, or rewritten meanwhile
                        return False
                    raise
                return True

            removed += self._call(f"delete {found['id']!r}", remove)
        return {"records": removed}

    def close(self) -> None:
        with self._lock:
            client, self._client, self._items = self._client, None, None
        if client is not None and self._pid == os.getpid():
            client.close()


def _environment(s: CosmosSettings) -> dict[str, Any]:
    """What requests would read from the environment on every request (proxies and
    ``NO_PROXY``, ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``), read once, when the client is
    made: per request that reading (and a stat of ~/.netrc) costs more CPU than the rest of
    the client's work."""
    host = urlsplit(s.endpoint).hostname or ""
    proxies = {} if urllib.request.proxy_bypass(host) else {
        scheme: url for scheme, url in urllib.request.getproxies().items()
        if scheme in ("http", "https")}
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    return {"transport": RequestsTransport(use_env_settings=False), "proxies": proxies,
            "connection_verify": (bundle or True) if s.verify_tls else False}


def _retry_after(exc: CosmosHttpResponseError) -> float:
    """Seconds the service asked to wait (``x-ms-retry-after-ms``), 0 if it did not say."""
    try:
        return max(0.0, float(exc.headers.get("x-ms-retry-after-ms", 0)) / 1000)
    except (TypeError, ValueError, AttributeError):
        return 0.0


__all__ = ["CosmosDBStore", "doc_id"]
