"""The CouchDB result store, over CouchDB's HTTP API (httpx), in Celery's CouchDB backend's
layout: one document per key, ``{"_id": "celery-task-meta-<id>", "value": "<record>"}``, in
the database the URL names (created on first use, as Celery does).

CouchDB has no time to live. A record stored with an expiry carries ``kernel_expires`` (Unix
time); reads treat a document past it as absent, `add` and `incr` as nothing stored, and
`cleanup` deletes such documents (the ``kernel results cleanup`` command, as Celery's
``celery.backend_cleanup``). Celery's readers ignore the field.

Every change is revision-checked: a create without ``_rev`` fails with 409 where a document
is, an update with a stale ``_rev`` likewise. `add` is a create; `incr` reads, adds and writes
with the revision read, again on a conflict, so concurrent counts are never lost.

Each process has its own connection pool (a forked child opens its own).
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit

import httpx

from kernel.interfaces.results import ResultStore
from kernel.plugin import (
    ConfigurationError,
    ConnectionFailed,
    KernelError,
    OptionReader,
    Options,
    mask_url,
    retry_within,
)
from kernel_couchdb.plugin import RESULT_STORE_CAPABILITIES

T = TypeVar("T")

DEFAULT_PORT = 5984

#: documents of each page `cleanup` reads.
CLEANUP_PAGE = 500

#: what marks an id kernel had to change: CouchDB reserves ids that start with "_".
ESCAPE = "kernel~"


def doc_id(key: str) -> str:
    """The document id for `key`: the key itself (Celery's keys are kept as they are), except
    one CouchDB reserves (a leading ``_``) or one that starts with the escape itself."""
    return ESCAPE + key if key.startswith(("_", ESCAPE)) else key


def encode_value(value: bytes) -> dict[str, Any]:
    """The document fields for `value`: text as Celery stores it, other bytes as base64."""
    try:
        return {"value": value.decode()}
    except UnicodeDecodeError:
        return {"value": base64.b64encode(value).decode(), "kernel_base64": True}


def decode_value(doc: dict[str, Any]) -> bytes:
    value = doc.get("value")
    if not isinstance(value, str):
        raise KernelError(f"the CouchDB document {doc.get('_id')!r} holds no text 'value' "
                          f"({type(value).__name__}); it was not written by Celery or kernel: "
                          f"delete it")
    return base64.b64decode(value) if doc.get("kernel_base64") else value.encode()


def live(doc: dict[str, Any] | None, now: float) -> bool:
    if doc is None or doc.get("_deleted"):
        return False
    expires = doc.get("kernel_expires")
    return not isinstance(expires, (int, float)) or expires > now


class CouchDBStore(ResultStore):
    """``couchdb://[user:password@]host[:port]/container`` (``container``: the database,
    ``default`` when the URL has none, as Celery's).

    Options (``result_backend_options``): ``timeout`` (seconds one request waits, at most a
    quarter of ``connection_timeout``), ``max_connections`` (per process; unbounded: one per
    thread that uses the store at once), ``scheme`` (``http``, or ``https`` for a server behind
    TLS). ``connection_timeout`` (4 s, the app's ``broker_connection_timeout``) is the most a
    call spends on an unreachable server before `ConnectionFailed`.
    """

    capabilities = RESULT_STORE_CAPABILITIES

    def __init__(self, url: str, options: Options | None = None) -> None:
        self.url = url
        reader = OptionReader(options or {}, "CouchDB result store")
        parts = urlsplit(url)
        if parts.scheme != "couchdb" or not parts.hostname:
            raise ConfigurationError(
                f"{mask_url(url)!r} is not a CouchDB URL; write "
                f"couchdb://user:password@host:port/database")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            raise ConfigurationError(f"the port of {mask_url(url)!r} is not a number") from None
        scheme = reader.text("scheme", "http")
        if scheme not in ("http", "https"):
            raise ConfigurationError(f"CouchDB option 'scheme' must be http or https, "
                                     f"not {scheme!r}")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        self.database = unquote(parts.path.strip("/")) or "default"
        self._base = f"{scheme}://{host}:{port}/{quote(self.database, safe='')}"
        self._auth = (unquote(parts.username or ""), unquote(parts.password or "")) \
            if parts.username else None
        self.connection_timeout = reader.number("connection_timeout", 4.0, positive=True)
        attempt = self.connection_timeout / 4
        self._timeout = min(reader.number("timeout", attempt, positive=True), attempt)
        limit = (options or {}).get("max_connections")
        self._max_connections = None if limit is None else reader.integer(
            "max_connections", 0, minimum=1)
        self._lock = threading.Lock()
        self._pid = -1
        self._client: httpx.Client | None = None

    def __repr__(self) -> str:
        return f"<CouchDBStore {mask_url(self.url)}>"

    # ------------------------------------------------------------------ HTTP

    def _connection(self) -> httpx.Client:
        """This process's client (a forked child makes its own: the parent's sockets stay
        the parent's); the database is created on first use, as Celery's backend does."""
        with self._lock:
            if self._client is not None and self._pid == os.getpid():
                return self._client
            client = httpx.Client(
                auth=self._auth, timeout=self._timeout,
                limits=httpx.Limits(max_connections=self._max_connections,
                                    max_keepalive_connections=self._max_connections or 64))
            self._ensure_database(client)
            self._client, self._pid = client, os.getpid()
            return client

    def _ensure_database(self, client: httpx.Client) -> None:
        response = self._send(lambda: client.put(self._base))
        if response.status_code in (401, 403):
            raise ConfigurationError(
                f"CouchDB at {mask_url(self.url)} refused the credentials "
                f"({response.status_code}); check the user and password in the URL")
        if response.status_code not in (201, 202, 412):  # 412: it exists
            raise self._unexpected("create the database", response)

    def _send(self, request: Callable[[], httpx.Response], *,
              resend: bool = True) -> httpx.Response:
        """`request`, tried again while the server cannot be reached and `connection_timeout`
        allows; `resend` False: only when nothing was sent (a connect failure)."""
        retry_on: tuple[type[BaseException], ...] = (
            (httpx.TransportError,) if resend else (httpx.ConnectError, httpx.ConnectTimeout))

        def failed(exc: BaseException) -> ConnectionFailed:
            return ConnectionFailed(
                f"cannot reach CouchDB at {mask_url(self.url)} within "
                f"{self.connection_timeout:g} s ({type(exc).__name__}: {exc}); check the server "
                f"is up and the URL is right, or allow longer (broker_connection_timeout)")

        try:
            return retry_within(self.connection_timeout, request, retry_on, failed)
        except httpx.TransportError as exc:  # not retried: its effect is unknown
            raise ConnectionFailed(
                f"lost the connection to CouchDB at {mask_url(self.url)} during an update "
                f"({type(exc).__name__}: {exc}); check the server (a worker retries the "
                f"task)") from exc

    def _unexpected(self, what: str, response: httpx.Response) -> KernelError:
        return KernelError(
            f"CouchDB at {mask_url(self.url)} could not {what}: {response.status_code} "
            f"{response.text[:200]}; check the server's log and the database's permissions")

    def _doc_url(self, key: str) -> str:
        return f"{self._base}/{quote(doc_id(key), safe='')}"

    def _read(self, key: str) -> dict[str, Any] | None:
        client = self._connection()
        response = self._send(lambda: client.get(self._doc_url(key)))
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._unexpected(f"read {doc_id(key)!r}", response)
        doc: dict[str, Any] = response.json()
        return doc

    def _write(self, key: str, fields: dict[str, Any], rev: str | None,
               resend: bool = True) -> bool:
        """Create (`rev` None) or update the document of `key`; False on a conflict (someone
        else wrote first, or it exists)."""
        client = self._connection()
        doc = {**fields, **({"_rev": rev} if rev else {})}
        response = self._send(lambda: client.put(self._doc_url(key), json=doc), resend=resend)
        if response.status_code == 404:  # the database is gone (dropped, a server reset)
            self._ensure_database(client)
            response = self._send(lambda: client.put(self._doc_url(key), json=doc),
                                  resend=resend)
        if response.status_code == 409:
            return False
        if response.status_code not in (200, 201, 202):
            raise self._unexpected(f"store {doc_id(key)!r}", response)
        return True

    @staticmethod
    def _fields(value: bytes, expires: float | None) -> dict[str, Any]:
        fields = encode_value(value)
        if expires is not None:
            fields["kernel_expires"] = time.time() + expires
        return fields

    # ------------------------------------------------------------------ the contract

    def set(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        for key, value in items:
            fields = self._fields(value, expires)
            rev = None
            while not self._write(key, fields, rev):
                found = self._read(key)  # replaced: write on top of the revision there
                rev = None if found is None else str(found["_rev"])

    def add(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        for key, value in items:
            fields = self._fields(value, expires)
            if self._write(key, fields, None):
                continue
            found = self._read(key)
            if not live(found, time.time()):
                # Expired (or deleted since): replace exactly the revision read; if another
                # writer got there first, theirs stays.
                self._write(key, fields, None if found is None else str(found["_rev"]))

    def get(self, key: str) -> bytes | None:
        doc = self._read(key)
        return decode_value(doc) if doc is not None and live(doc, time.time()) else None

    def delete(self, keys: Sequence[str]) -> None:
        client = self._connection()
        for key in keys:
            while (doc := self._read(key)) is not None:
                rev = str(doc["_rev"])
                response = self._send(partial(client.delete, self._doc_url(key),
                                              params={"rev": rev}))
                if response.status_code in (200, 202, 404):
                    break
                if response.status_code != 409:  # 409: changed meanwhile; read it again
                    raise self._unexpected(f"delete {doc_id(key)!r}", response)

    def incr(self, key: str, amount: int = 1, expires: float | None = None) -> int:
        """Read, add, write with the revision read; a conflict (another count came first)
        reads again. Sent once: an update whose reply was lost is not sent again."""
        while True:
            doc = self._read(key)
            current = int(decode_value(doc)) if doc is not None and live(doc, time.time()) \
                else 0
            value = current + amount
            rev = None if doc is None else str(doc["_rev"])
            if self._write(key, self._fields(b"%d" % value, expires), rev, resend=False):
                return value

    def cleanup(self) -> dict[str, int]:
        """Delete every document past its ``kernel_expires``; how many were. What
        ``kernel results cleanup`` runs for this store (CouchDB has no time to live)."""
        client = self._connection()
        removed = 0
        for page in self._pages(client):
            now = time.time()
            gone = [{"_id": d["_id"], "_rev": d["_rev"], "_deleted": True}
                    for d in page if d.get("kernel_expires") is not None and not live(d, now)]
            if gone:
                response = self._send(partial(client.post, f"{self._base}/_bulk_docs",
                                              json={"docs": gone}))
                if response.status_code not in (201, 202):
                    raise self._unexpected("delete expired documents", response)
                # a conflict: rewritten meanwhile, so no longer expired
                removed += sum(1 for r in response.json() if r.get("ok"))
        return {"records": removed}

    def _pages(self, client: httpx.Client) -> Iterator[list[dict[str, Any]]]:
        start: str | None = None
        while True:
            params: dict[str, Any] = {"include_docs": "true", "limit": CLEANUP_PAGE + 1}
            if start is not None:
                params["startkey"] = json.dumps(start)
            response = self._send(partial(client.get, f"{self._base}/_all_docs", params=params))
            if response.status_code != 200:
                raise self._unexpected("list documents", response)
            rows = response.json().get("rows", [])
            docs = [r["doc"] for r in rows[:CLEANUP_PAGE] if r.get("doc")]
            yield [d for d in docs if not str(d.get("_id", "")).startswith("_design/")]
            if len(rows) <= CLEANUP_PAGE:
                return
            start = str(rows[CLEANUP_PAGE]["id"])

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None and self._pid == os.getpid():
            client.close()


__all__ = ["CouchDBStore", "doc_id"]
