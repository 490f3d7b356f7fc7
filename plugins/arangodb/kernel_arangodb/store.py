"""The ArangoDB result store, on python-arango, in Celery's ArangoDB backend's layout: one
document per key, ``{"_key": <key>, "task": <the encoded record>}``, in the collection the URL
names. A value that is not UTF-8 text (a pickled record) is stored base64 with
``"kernel_base64": true`` (Celery's backend cannot store those).

What `kernel.objectstore.ObjectStore` builds on here, ArangoDB's document API: an insert
without ``overwrite`` is refused (409, unique constraint) where the key is taken (add, a
counter's first count); a replace with the ``_rev`` read and ``ignoreRevs=false`` is refused
(412) where the document changed (a counter's next counts). Both are one step on the server,
so counters are atomic.

Expiry: a record stored with one carries ``kernel_expires`` (Unix time), which reads honour
and a TTL index on that field (``expireAfter: 0``) lets ArangoDB remove: its background thread
runs every 30 s by default (``--ttl.frequency``), so ``kernel results cleanup`` has nothing to
do here. The index is made sure of on the first write of each process. Celery's documents
carry no deadline and are kept, as Celery keeps them.

Keys: Celery's (``celery-task-meta-<uuid>``) are document keys as they are; a key with a
character ArangoDB does not allow in ``_key`` (or that would not survive a URL), or longer
than its 254 bytes, is stored under ``!`` and the key's SHA-256.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import requests.exceptions
import urllib3.exceptions
from arango.client import ArangoClient
from arango.collection import StandardCollection
from arango.database import StandardDatabase
from arango.exceptions import ArangoServerError, DocumentInsertError, DocumentRevisionError
from arango.http import DefaultHTTPClient
from arango.response import Response

from kernel.plugin import (
    ConfigurationError,
    ContainerMissing,
    KernelError,
    Lost,
    ObjectListing,
    ObjectStore,
    OptionReader,
    Options,
    StoredObject,
    Throttled,
    Unreached,
    mask_url,
)
from kernel_arangodb.plugin import RESULT_STORE_CAPABILITIES

DEFAULT_PORT = 8529
#: the field holding a record's deadline, which the TTL index expires by.
EXPIRES_FIELD = "kernel_expires"
#: what a document key may hold as it is: ArangoDB's characters, less ``%`` and ``'`` (which
#: python-arango would put into a URL unescaped).
PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-:.@()+,=;$*]{1,254}")

#: ArangoDB's error numbers the store tells apart.
DOCUMENT_NOT_FOUND = 1202
COLLECTION_NOT_FOUND = 1203
DUPLICATE_NAME = 1207
UNIQUE_CONSTRAINT = 1210
DATABASE_NOT_FOUND = 1228


def document_key(key: str) -> str:
    """The ``_key`` for `key`: the key itself where ArangoDB takes it, else ``!`` + SHA-256."""
    if PLAIN_KEY.fullmatch(key) and key not in (".", ".."):
        return key
    return "!" + hashlib.sha256(key.encode()).hexdigest()


def encode_fields(value: bytes) -> dict[str, Any]:
    try:
        return {"task": value.decode()}
    except UnicodeDecodeError:
        return {"task": base64.b64encode(value).decode(), "kernel_base64": True}


def decode_fields(doc: dict[str, Any], where: str) -> bytes:
    value = doc.get("task")
    if not isinstance(value, str):
        raise KernelError(f"the ArangoDB document {where} holds no text 'task' "
                          f"({type(value).__name__}); it was not written by Celery or kernel: "
                          f"delete it")
    return base64.b64decode(value) if doc.get("kernel_base64") else value.encode()


class HTTPClient(DefaultHTTPClient):
    """python-arango's client, telling a request that never reached the server (`Unreached`:
    tried again) from one whose reply was lost (`Lost`: it may have been applied). Left to
    python-arango, both become a ``ConnectionAbortedError`` after it sent the request again,
    which could count a counter twice."""

    def send_request(self, *args: Any, **kwargs: Any) -> Response:
        try:
            return super().send_request(*args, **kwargs)
        except requests.exceptions.ConnectTimeout as exc:
            raise Unreached(f"{type(exc).__name__}: {exc}") from exc
        except requests.exceptions.ConnectionError as exc:
            reached = not any(isinstance(e, urllib3.exceptions.NewConnectionError)
                              for e in _causes(exc))
            raise (Lost if reached else Unreached)(f"{type(exc).__name__}: {exc}") from exc
        except requests.exceptions.Timeout as exc:
            raise Lost(f"{type(exc).__name__}: {exc}") from exc


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, what it wraps (requests keeps urllib3's error in its arguments), and so on."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(a for a in current.args if isinstance(a, BaseException))
        for attr in ("reason", "__cause__", "__context__"):
            inner = getattr(current, attr, None)
            if isinstance(inner, BaseException):
                todo.append(inner)


@dataclass(frozen=True)
class Handle:
    """This process's way to the collection (and its database, to create it)."""

    database: StandardDatabase
    collection: StandardCollection


class ArangoDBStore(ObjectStore[Handle]):
    """``arangodb://[user:password@]host[:port]/database/collection``, or the parts in Celery's
    ``arangodb_backend_settings`` (``host``, ``port``, ``database``, ``collection``,
    ``username``, ``password``, ``http_protocol``, ``verify``); the URL's parts win, and
    Celery's defaults (127.0.0.1:8529, database and collection ``celery``) fill the rest.

    ``arangodb_create_collection`` (kernel's) creates a missing collection with its TTL index.
    ``connection_timeout`` (4 s, the app's ``broker_connection_timeout``) is the most a call
    spends on an unreachable server before `ConnectionFailed`.
    """

    service = "ArangoDB"

    def __init__(self, url: str, options: Options | None = None) -> None:
        options = options or {}
        reader = OptionReader(options, "ArangoDB result store")
        settings = options.get("arangodb_backend_settings") or {}
        if not isinstance(settings, dict):
            raise ConfigurationError("arangodb_backend_settings must be a dict, as Celery's: "
                                     "{'host': ..., 'database': ..., 'collection': ...}")
        parts = urlsplit(url)
        if parts.scheme != "arangodb":
            raise ConfigurationError(f"{mask_url(url)!r} is not an ArangoDB URL; write "
                                     f"arangodb://user:password@host:port/database/collection")
        try:
            port = int(parts.port or settings.get("port") or DEFAULT_PORT)
        except ValueError:
            raise ConfigurationError(f"the port of {mask_url(url)!r} is not a number") from None
        path = [unquote(p) for p in parts.path.strip("/").split("/")] if parts.path.strip("/") \
            else []
        if len(path) not in (0, 2):
            raise ConfigurationError(
                f"{mask_url(url)!r} names {'/'.join(path)!r}; an ArangoDB URL names the "
                f"database and the collection: arangodb://host:port/database/collection")
        self.database, self.collection = path or (
            str(settings.get("database", "celery")), str(settings.get("collection", "celery")))
        protocol = str(settings.get("http_protocol", "http"))
        if protocol not in ("http", "https"):
            raise ConfigurationError(f"arangodb_backend_settings 'http_protocol' must be http "
                                     f"or https, not {protocol!r}")
        host = parts.hostname or str(settings.get("host", "127.0.0.1"))
        self._user = unquote(parts.username or "") or str(settings.get("username") or "root")
        self._password = unquote(parts.password or "") or str(settings.get("password") or "")
        self._verify = settings.get("verify", True)
        self.endpoint = f"{protocol}://{f'[{host}]' if ':' in host else host}:{port}"
        timeout = reader.number("connection_timeout", 4.0, positive=True)
        self._attempt = max(timeout / 4, 0.25)
        super().__init__(
            resource=f"collection {self.collection!r} of the database {self.database!r}",
            where=self.endpoint, prefix="", connection_timeout=timeout,
            capabilities=RESULT_STORE_CAPABILITIES,
            creates_container=reader.boolean("arangodb_create_collection", False),
            create_setting="arangodb_create_collection",
            container_setting="the URL (arangodb://host:port/database/collection)")
        self.url = url
        self._indexed_lock = threading.Lock()
        self._indexed_pid = -1

    def __repr__(self) -> str:
        return f"<ArangoDBStore {mask_url(self.url)}>"

    # ------------------------------------------------------------------ the client

    def connect(self) -> Handle:
        # python-arango's own retries are off: the kit retries within connection_timeout.
        client = ArangoClient(hosts=self.endpoint, verify_override=self._verify,
                              resolver_max_tries=1,
                              http_client=HTTPClient(request_timeout=self._attempt,
                                                     retry_attempts=0))
        database = client.db(self.database, username=self._user, password=self._password)
        return Handle(database, database.collection(self.collection))

    def create_container(self, client: Handle) -> None:
        try:
            client.database.create_collection(self.collection)
        except ArangoServerError as exc:
            if exc.error_code != DUPLICATE_NAME:
                raise
        self._ensure_index(client, force=True)

    def _ensure_index(self, client: Handle, *, force: bool = False) -> None:
        """The TTL index on ``kernel_expires``, once per process (creating one that exists
        answers the one there)."""
        with self._indexed_lock:
            if self._indexed_pid == os.getpid() and not force:
                return
            client.collection.add_index({"type": "ttl", "fields": [EXPIRES_FIELD],
                                         "expireAfter": 0, "name": "kernel_expires_ttl"})
            self._indexed_pid = os.getpid()

    def object_name(self, key: str) -> str:
        return document_key(key)

    # ------------------------------------------------------------------ primitives

    def read_object(self, client: Handle, name: str) -> StoredObject | None:
        found = client.collection.get(name)
        if found is None:
            return None
        doc = cast(dict[str, Any], found)  # a standard database answers at once, not a job
        expires = doc.get(EXPIRES_FIELD)
        return StoredObject(decode_fields(doc, f"{name!r} in the {self.described}"),
                            str(doc["_rev"]),
                            float(expires) if isinstance(expires, (int, float)) else None)

    def _document(self, name: str, data: bytes, expires_at: float | None) -> dict[str, Any]:
        doc = {"_key": name, **encode_fields(data)}
        if expires_at is not None:
            doc[EXPIRES_FIELD] = expires_at
        return doc

    def write_object(self, client: Handle, name: str, data: bytes,
                     expires_at: float | None) -> None:
        self._ensure_index(client)
        client.collection.insert(self._document(name, data, expires_at), overwrite=True,
                      overwrite_mode="replace", silent=True)

    def create_object(self, client: Handle, name: str, data: bytes,
                      expires_at: float | None) -> bool:
        self._ensure_index(client)
        try:
            client.collection.insert(self._document(name, data, expires_at), silent=True)
        except DocumentInsertError as exc:
            if exc.error_code == UNIQUE_CONSTRAINT:
                return False
            raise
        return True

    def replace_object(self, client: Handle, name: str, data: bytes,
                       expires_at: float | None, version: str) -> bool:
        self._ensure_index(client)
        doc = {**self._document(name, data, expires_at), "_rev": version}
        try:
            client.collection.replace(doc, check_rev=True, silent=True)
        except DocumentRevisionError:
            return False  # changed since it was read
        except ArangoServerError as exc:
            if exc.error_code == DOCUMENT_NOT_FOUND:
                return False  # deleted since it was read
            raise
        return True

    def delete_object(self, client: Handle, name: str, version: str | None) -> None:
        client.collection.delete(name, ignore_missing=True, silent=True)

    def list_objects(self, client: Handle, prefix: str) -> Iterable[ObjectListing]:
        """Nothing: the TTL index removes what expired (see the module's docstring)."""
        return []

    def classify(self, exc: Exception, what: str) -> BaseException | None:
        if isinstance(exc, ArangoServerError):
            code, status = exc.error_code, exc.http_code
            if code == COLLECTION_NOT_FOUND:
                return ContainerMissing()
            if code == DATABASE_NOT_FOUND:
                return ConfigurationError(
                    f"the database {self.database!r} does not exist at {self.where}; create it "
                    f"(kernel creates collections, never databases), or name another in the "
                    f"URL")
            if status in (401, 403):
                return ConfigurationError(
                    f"the {self.described} refused the credentials to {what} ({status} "
                    f"{exc.error_message}); check the user and password in the URL and the "
                    f"user's access to the database")
            if status in (429, 503):
                return Throttled(f"{status} from ArangoDB")
            return KernelError(f"the {self.described} could not {what}: {status} "
                               f"{exc.error_message}; check the server's log")
        return None


__all__ = ["ArangoDBStore", "decode_fields", "document_key", "encode_fields"]
