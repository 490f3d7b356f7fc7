"""The Elasticsearch and OpenSearch result store, in Celery's Elasticsearch backend's layout:
one document per key in the index the URL names, its id the key itself, holding::

    {"result": "<the record, as text>", "@timestamp": "2026-12-08T03:20:00.123Z"}

(with ``elasticsearch_save_meta_as_text`` off, ``result`` is the record as an object whose
``result`` and ``traceback`` are their serialized text, as Celery writes it then). Keys Celery
never reads (kernel's counters, revocations) keep their bytes in ``kernel_value`` instead, so
``result`` keeps one mapping in the index.

The services have no time to live. A record stored with an expiry carries ``kernel_expires``
(Unix time in milliseconds, mapped as a ``long``); reads treat a document past it as absent,
`add` and `incr` as nothing stored, and `cleanup` deletes such documents (``kernel results
cleanup``, as Celery's ``celery.backend_cleanup``). Celery's readers ignore the field. Bytes
that are not UTF-8 are kept as base64, marked ``kernel_base64``.

`add` is ``op_type=create``; an expired document is replaced only at the version read. `incr`
reads, adds and writes with ``if_seq_no``/``if_primary_term`` of the version read, again on a
conflict, so concurrent counts are never lost; that write is sent once (a lost reply is not
sent again: it may have counted). Gets by id are real-time in both services (no refresh).

The index is created by the server on the first write, as Celery relies on (the services'
``action.auto_create_index``). Each process has its own client (a forked child makes its own).
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from functools import partial
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from kernel.interfaces.results import ResultStore
from kernel.plugin import (
    ConfigurationError,
    ConnectionFailed,
    KernelError,
    OptionReader,
    Options,
    key_kind,
    mask_url,
    retry_within,
)
from kernel_elasticsearch.clients import (
    ElasticsearchFlavour,
    Flavour,
    OpenSearchFlavour,
    status_of,
)
from kernel_elasticsearch.plugin import (
    ELASTICSEARCH_SCHEMES,
    OPENSEARCH_SCHEMES,
    RESULT_STORE_CAPABILITIES,
)

T = TypeVar("T")

DEFAULT_PORT = 9200
#: Celery's default index.
DEFAULT_INDEX = "celery"
#: what Elasticsearch and OpenSearch refuse in an index name (besides upper case).
_BAD_INDEX = re.compile(r'[\\/*?"<>| ,#:]|^[-_+]|^\.\.?$')


def timestamp(now: datetime) -> str:
    """``@timestamp`` as Celery writes it: UTC, to the millisecond, with a ``Z``."""
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _text(value: bytes) -> dict[str, Any]:
    try:
        return {"text": value.decode()}
    except UnicodeDecodeError:
        return {"text": base64.b64encode(value).decode(), "kernel_base64": True}


def _as_object(record: dict[str, Any]) -> dict[str, Any]:
    """A record as Celery keeps it with ``elasticsearch_save_meta_as_text`` off: its result
    and traceback (where set) as their JSON text, the rest as it is."""
    return {**record, **{f: json.dumps(record[f]) for f in ("result", "traceback")
                         if record.get(f)}}


def _json_object(value: bytes) -> object:
    try:
        return json.loads(value)
    except ValueError:
        return None


def _from_object(doc_id: str, record: dict[str, Any]) -> bytes:
    try:
        fields = {f: json.loads(record[f]) for f in ("result", "traceback")
                  if isinstance(record.get(f), str) and record[f]}
    except ValueError as exc:
        raise KernelError(f"the document {doc_id!r} holds a record whose result or traceback "
                          f"is not JSON text ({exc}); it was not written by Celery or kernel: "
                          f"delete it") from None
    return json.dumps({**record, **fields}).encode()


class SearchStore(ResultStore):
    """``elasticsearch://[user:password@]host[:port]/index`` (Celery's; ``elasticsearch+https://``
    for TLS), ``opensearch://...`` alike; the index is ``celery`` when the URL names none.

    Settings (Celery's names, for both services): ``elasticsearch_timeout`` (seconds one
    request waits, at most ``connection_timeout`` except for `cleanup`),
    ``elasticsearch_max_retries``, ``elasticsearch_retry_on_timeout``,
    ``elasticsearch_save_meta_as_text``. ``connection_timeout`` (4 s, the app's
    ``broker_connection_timeout``) is the most a call spends on an unreachable server before
    `ConnectionFailed`.
    """

    capabilities = RESULT_STORE_CAPABILITIES
    schemes: tuple[str, ...] = ()
    flavour_class: type[Flavour]

    def __init__(self, url: str, options: Options | None = None) -> None:
        self.url = url
        self.flavour = self.flavour_class()
        service = self.flavour.service
        reader = OptionReader(options or {}, f"{service} result store")
        parts = urlsplit(url)
        if parts.scheme not in self.schemes:
            raise ConfigurationError(f"{mask_url(url)!r} is not an {service} URL; write "
                                     f"{self.schemes[0]}://host:port/index")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            raise ConfigurationError(f"the port of {mask_url(url)!r} is not a number") from None
        path = unquote(parts.path).strip("/")
        if "/" in path:
            raise ConfigurationError(
                f"{mask_url(url)!r} names a document type after the index; {service} 8 has "
                f"none: write {self.schemes[0]}://host:port/{path.split('/')[0]}")
        self.index = path or DEFAULT_INDEX
        if self.index != self.index.lower() or _BAD_INDEX.search(self.index):
            raise ConfigurationError(
                f"{self.index!r} (in {mask_url(url)!r}) is not a valid index name: use lower "
                f"case, without spaces or any of \\ / * ? \" < > | , # :")
        scheme = "https" if parts.scheme.endswith("+https") else "http"
        host = parts.hostname or "localhost"
        host = f"[{host}]" if ":" in host else host
        self.where = f"{host}:{port}"
        self._address = f"{scheme}://{self.where}"
        self._auth = (unquote(parts.username or ""), unquote(parts.password or "")) \
            if parts.username else None
        self.connection_timeout = reader.number("connection_timeout", 4.0, positive=True)
        self.timeout = reader.number("elasticsearch_timeout", 10.0, positive=True)
        self._max_retries = reader.integer("elasticsearch_max_retries", 3, minimum=0)
        self._retry_on_timeout = reader.boolean("elasticsearch_retry_on_timeout", False)
        self.meta_as_text = reader.boolean("elasticsearch_save_meta_as_text", True)
        fields = (options or {}).get("record_fields")
        serializer = getattr(getattr(fields, "serializer", None), "name", "json")
        if not self.meta_as_text and serializer != "json":
            raise ConfigurationError(
                f"elasticsearch_save_meta_as_text off keeps records as objects, which needs "
                f"result_serializer 'json', not {serializer!r}; turn the setting on or use json")
        self._lock = threading.Lock()
        self._pid = -1
        self._clients: tuple[Any, Any] | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {mask_url(self.url)}>"

    def __str__(self) -> str:
        return f"the {self.flavour.service} index {self.index!r} at {self.where}"

    # ------------------------------------------------------------------ the client

    def _client(self, once: bool = False) -> Any:
        """This process's client (a forked child makes its own: the parent's sockets stay the
        parent's); `once`: the one that never sends a request twice."""
        with self._lock:
            if self._clients is None or self._pid != os.getpid():
                timeout = min(self.timeout, self.connection_timeout)
                self._clients = (
                    self.flavour.connect(self._address, self._auth, timeout,
                                         self._max_retries, self._retry_on_timeout),
                    self.flavour.connect(self._address, self._auth, timeout, 0, False))
                self._pid = os.getpid()
            return self._clients[1 if once else 0]

    def _call(self, what: str, call: Callable[[], T], *, resend: bool = True) -> T:
        """`call`, tried again while the server cannot be reached and `connection_timeout`
        allows (`resend` False: never again, its effect unknown); the client's errors become
        sentences."""
        errors = self.flavour.errors
        service = self.flavour.service

        def failed(exc: BaseException) -> ConnectionFailed:
            return ConnectionFailed(
                f"cannot reach {service} at {self.where} to {what} within "
                f"{self.connection_timeout:g} s ({type(exc).__name__}); check the server is up "
                f"and the URL is right, or allow longer (broker_connection_timeout)")

        try:
            if not resend:
                return call()
            return retry_within(self.connection_timeout, call, errors.unreached, failed)
        except errors.unreached as exc:  # only when not resent
            raise ConnectionFailed(
                f"lost the connection to {service} at {self.where} during an update of "
                f"{self.index!r} ({type(exc).__name__}); check the server (a worker retries "
                f"the task)") from None
        except errors.refused as exc:
            raise ConfigurationError(
                f"{service} at {self.where} refused to let us {what} ({status_of(exc)}); "
                f"check the user and password in the URL and their rights on the index "
                f"{self.index!r}") from None
        except errors.not_found + errors.conflict:
            raise
        except errors.answered as exc:
            said = " ".join(str(exc).split())[:200]
            raise KernelError(
                f"{service} at {self.where} could not {what}: {status_of(exc) or ''} {said}; "
                f"check that it is {service} (opensearch:// for OpenSearch, elasticsearch:// "
                f"for Elasticsearch) and its log") from None

    def _read(self, key: str) -> dict[str, Any] | None:
        """The document of `key` (``_source``, ``_seq_no``, ``_primary_term``), or None."""
        client = self._client()
        try:
            return self._call(f"read {key!r}",
                              lambda: self.flavour.get(client, self.index, key))
        except self.flavour.errors.not_found:
            return None

    def _write(self, key: str, document: dict[str, Any], *, create: bool = False,
               seq: tuple[int, int] | None = None, once: bool = False) -> bool:
        """Index `document` (see `Flavour.write`); False on a conflict."""
        client = self._client(once)
        try:
            self._call(f"store {key!r}", lambda: self.flavour.write(
                client, self.index, key, document, create=create, seq=seq), resend=not once)
        except self.flavour.errors.conflict:
            return False
        except self.flavour.errors.not_found:
            raise ConfigurationError(
                f"the index {self.index!r} does not exist at {self.where} and the server does "
                f"not create indices on write (action.auto_create_index is off); create it, "
                f"or name another in the URL") from None
        return True

    # ------------------------------------------------------------------ documents

    def _document(self, key: str, value: bytes, expires: float | None) -> dict[str, Any]:
        now = datetime.now(timezone.utc)
        if key_kind(key) is None:
            text = _text(value)
            doc: dict[str, Any] = {"kernel_value": text.pop("text"), **text}
        elif not self.meta_as_text and isinstance(record := _json_object(value), dict):
            doc = {"result": _as_object(record)}
        else:
            text = _text(value)
            doc = {"result": text.pop("text"), **text}
        doc["@timestamp"] = timestamp(now)
        if expires is not None:
            doc["kernel_expires"] = int((now.timestamp() + expires) * 1000)
        return doc

    @staticmethod
    def _live(found: dict[str, Any] | None) -> dict[str, Any] | None:
        if found is None or not found.get("found", True):
            return None
        expires = found.get("_source", {}).get("kernel_expires")
        if isinstance(expires, (int, float)) and expires <= time.time() * 1000:
            return None
        return found

    def _value(self, found: dict[str, Any]) -> bytes:
        source, doc_id = found.get("_source", {}), found.get("_id")
        value = source.get("kernel_value", source.get("result"))
        if isinstance(value, dict):
            return _from_object(str(doc_id), value)
        if not isinstance(value, str):
            raise KernelError(
                f"the document {doc_id!r} in {self} holds no text 'result' "
                f"({type(value).__name__}); it was not written by Celery or kernel: delete it")
        return base64.b64decode(value) if source.get("kernel_base64") else value.encode()

    @staticmethod
    def _seq(found: dict[str, Any]) -> tuple[int, int]:
        return int(found["_seq_no"]), int(found["_primary_term"])

    # ------------------------------------------------------------------ the contract

    def set(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        for key, value in items:
            self._write(key, self._document(key, value, expires))

    def add(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        for key, value in items:
            document = self._document(key, value, expires)
            while not self._write(key, document, create=True):
                found = self._read(key)
                if found is not None and self._live(found) is not None:
                    break  # a live value: it stays
                if found is not None:
                    # Expired: replace exactly the version read; if another writer got there
                    # first, theirs stays.
                    self._write(key, document, seq=self._seq(found))
                    break

    def get(self, key: str) -> bytes | None:
        found = self._live(self._read(key))
        return None if found is None else self._value(found)

    def delete(self, keys: Sequence[str]) -> None:
        client = self._client()
        for key in keys:
            try:
                self._call(f"delete {key!r}",
                           partial(self.flavour.delete, client, self.index, key))
            except self.flavour.errors.not_found:
                pass

    def incr(self, key: str, amount: int = 1, expires: float | None = None) -> int:
        """Read, add, write only over the version read (``if_seq_no``); a conflict (another
        count came first) reads again. The write is sent once."""
        while True:
            found = self._read(key)
            live = self._live(found)
            value = (int(self._value(live)) if live is not None else 0) + amount
            document = self._document(key, b"%d" % value, expires)
            if found is None:
                done = self._write(key, document, create=True, once=True)
            else:
                done = self._write(key, document, seq=self._seq(found), once=True)
            if done:
                return value

    def cleanup(self) -> dict[str, int]:
        """Delete every document past its ``kernel_expires``; how many were. What ``kernel
        results cleanup`` runs for this store (the services have no time to live)."""
        client = self._client()
        query = {"range": {"kernel_expires": {"lte": int(time.time() * 1000)}}}
        try:
            self._call(f"refresh {self.index!r}", lambda: self.flavour.refresh(client, self.index))
            answer = self._call("delete expired documents", lambda: self.flavour.delete_matching(
                client, self.index, query, self.timeout))
        except self.flavour.errors.not_found:
            return {"records": 0}  # no index yet: nothing was ever stored
        return {"records": int(answer.get("deleted", 0))}

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, None
        if clients is not None and self._pid == os.getpid():
            for client in clients:
                client.close()


class ElasticsearchStore(SearchStore):
    __doc__ = SearchStore.__doc__
    schemes = ELASTICSEARCH_SCHEMES
    flavour_class = ElasticsearchFlavour


class OpenSearchStore(SearchStore):
    __doc__ = SearchStore.__doc__
    schemes = OPENSEARCH_SCHEMES
    flavour_class = OpenSearchFlavour


__all__ = ["ElasticsearchStore", "OpenSearchStore", "SearchStore", "timestamp"]
