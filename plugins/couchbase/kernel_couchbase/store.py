"""The Couchbase result store, on the Couchbase Python SDK 4, in Celery's Couchbase backend's
layout: one document per key (Celery's key as it is) in the bucket's default collection, its
value the encoded record as a JSON string, flagged JSON — what the SDK's default transcoder
makes of the text Celery's backend upserts. A value that is not UTF-8 text (a pickled record)
is stored as binary (Celery's backend cannot store those: the default transcoder refuses bytes).

What `kernel.objectstore.ObjectStore` builds on here, the key/value operations: ``insert``
(refused with ``DocumentExistsException`` where a live document is: add, a counter's first
count) and ``replace`` with the CAS read (refused with ``CasMismatchException`` where the
document changed: a counter's next counts), each one atomic step on the server, so counters are
atomic. (The SDK's own counters, ``binary().increment``, cannot go below zero, and a counter
here takes any amount.)

Expiry is Couchbase's document expiry, which counts whole seconds (the SDK drops a fraction,
and 0 means never): a record is stored to expire at the next whole second at or after its due
time, so never before. The server keeps expired documents from every read, so ``kernel results
cleanup`` has nothing to do.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from couchbase.auth import PasswordAuthenticator
from couchbase.cluster import Cluster
from couchbase.collection import Collection
from couchbase.constants import FMT_BYTES, FMT_JSON, FMT_UTF8
from couchbase.exceptions import (
    AmbiguousTimeoutException,
    AuthenticationException,
    BucketNotFoundException,
    CasMismatchException,
    CouchbaseException,
    DocumentExistsException,
    DocumentNotFoundException,
    RateLimitedException,
    ScopeNotFoundException,
    TemporaryFailException,
    UnAmbiguousTimeoutException,
)
from couchbase.options import (
    ClusterOptions,
    ClusterTimeoutOptions,
    GetOptions,
    InsertOptions,
    ReplaceOptions,
    UpsertOptions,
)
from couchbase.transcoder import Transcoder, get_decode_format

from kernel.plugin import (
    ConfigurationError,
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
from kernel_couchbase.plugin import RESULT_STORE_CAPABILITIES

#: the longest document key Couchbase takes, in bytes.
MAX_KEY = 250


class NotARecord(Exception):
    """A document kernel's transcoder cannot hand back as a record's bytes."""


class RecordTranscoder(Transcoder):  # type: ignore[misc]  # the SDK ships no types
    """Records as Celery's backend leaves them (text as a JSON string, flagged JSON), other
    bytes as binary; reads Couchbase's string format (raw UTF-8) too."""

    def encode_value(self, value: Any) -> tuple[bytes, int]:
        data = bytes(value)
        try:
            text = data.decode()
        except UnicodeDecodeError:
            return data, FMT_BYTES
        return json.dumps(text).encode(), FMT_JSON

    def decode_value(self, value: bytes, flags: int) -> bytes:
        form = get_decode_format(flags)
        if form in (FMT_BYTES, FMT_UTF8):
            return bytes(value)
        if form in (FMT_JSON, 0, None):
            try:
                text = json.loads(value)
            except ValueError:
                text = None
            if isinstance(text, str):
                return text.encode()
            raise NotARecord("JSON that is not a string (a record is a JSON string)")
        raise NotARecord(f"a value in format {form} (pickle or unknown)")


TRANSCODER = RecordTranscoder()


def document_key(key: str) -> str:
    """The document key for `key`: the key itself, unless it is over Couchbase's 250 bytes or
    starts with ``!`` (what marks the others): then ``!`` + its SHA-256."""
    if len(key.encode()) <= MAX_KEY and not key.startswith("!"):
        return key
    return "!" + hashlib.sha256(key.encode()).hexdigest()


class CouchbaseStore(ObjectStore[Collection]):
    """``couchbase://user:password@host[:port]/bucket``, or the parts in Celery's
    ``couchbase_backend_settings`` (``host``, ``port``, ``bucket``, ``username``,
    ``password``); the URL's parts win, Celery's defaults fill the rest (``localhost``,
    bucket ``default``). kernel's key there: ``scheme`` (``couchbases`` for TLS).

    ``connection_timeout`` (4 s, the app's ``broker_connection_timeout``) is the most a call
    spends on an unreachable cluster before `ConnectionFailed`.
    """

    service = "Couchbase"

    def __init__(self, url: str, options: Options | None = None) -> None:
        options = options or {}
        reader = OptionReader(options, "Couchbase result store")
        settings = options.get("couchbase_backend_settings") or {}
        if not isinstance(settings, dict):
            raise ConfigurationError("couchbase_backend_settings must be a dict, as Celery's: "
                                     "{'host': ..., 'bucket': ..., 'username': ...}")
        parts = urlsplit(url)
        if parts.scheme != "couchbase":
            raise ConfigurationError(f"{mask_url(url)!r} is not a Couchbase URL; write "
                                     f"couchbase://user:password@host/bucket")
        try:
            port = parts.port or settings.get("port")
            port = int(port) if port else None
        except ValueError:
            raise ConfigurationError(f"the port of {mask_url(url)!r} is not a number") from None
        scheme = str(settings.get("scheme", "couchbase"))
        if scheme not in ("couchbase", "couchbases"):
            raise ConfigurationError(f"couchbase_backend_settings 'scheme' must be couchbase "
                                     f"or couchbases, not {scheme!r}")
        host = parts.hostname or str(settings.get("host", "localhost"))
        self.bucket = unquote(parts.path.strip("/")) or str(settings.get("bucket", "default"))
        self._user = unquote(parts.username or "") or settings.get("username")
        self._password = unquote(parts.password or "") or settings.get("password")
        if not self._user or not self._password:
            raise ConfigurationError(
                f"the Couchbase result store needs a user and password (Couchbase Server "
                f"refuses anonymous clients); write couchbase://user:password@{host}/"
                f"{self.bucket}, or set them in couchbase_backend_settings")
        shown = f"[{host}]" if ":" in host else host
        self.connstr = f"{scheme}://{shown}" + (f":{port}" if port else "")
        timeout = reader.number("connection_timeout", 4.0, positive=True)
        self._attempt = max(timeout / 4, 0.25)
        super().__init__(resource=f"bucket {self.bucket!r}", where=self.connstr, prefix="",
                         connection_timeout=timeout, capabilities=RESULT_STORE_CAPABILITIES)
        self.url = url
        self._cluster: Cluster | None = None

    def __repr__(self) -> str:
        return f"<CouchbaseStore {mask_url(self.url)}>"

    # ------------------------------------------------------------------ the client

    def connect(self) -> Collection:
        attempt = timedelta(seconds=self._attempt)
        cluster = Cluster(self.connstr, ClusterOptions(
            PasswordAuthenticator(str(self._user), str(self._password)),
            timeout_options=ClusterTimeoutOptions(connect_timeout=attempt, kv_timeout=attempt,
                                                  bootstrap_timeout=attempt)))
        try:
            collection = cluster.bucket(self.bucket).default_collection()
        except Exception:
            cluster.close()
            raise
        self._cluster = cluster
        return collection

    def create_container(self, client: Collection) -> None:
        """Never called: a missing bucket is an error (creating one takes the cluster's admin
        and a memory quota, which is not a result store's to choose)."""

    def close_client(self, client: Collection) -> None:
        cluster, self._cluster = self._cluster, None
        if cluster is not None:
            cluster.close()

    def object_name(self, key: str) -> str:
        return document_key(key)

    # ------------------------------------------------------------------ primitives

    def read_object(self, client: Collection, name: str) -> StoredObject | None:
        try:
            found = client.get(name, GetOptions(transcoder=TRANSCODER))
        except DocumentNotFoundException:
            return None
        try:
            data = found.value
        except NotARecord as exc:
            raise KernelError(f"the Couchbase document {name!r} in the {self.described} holds "
                              f"{exc}; it was not written by Celery or kernel: delete it") from None
        return StoredObject(bytes(data), str(found.cas))

    @staticmethod
    def _expiry(expires_at: float | None) -> dict[str, Any]:
        if expires_at is None:
            return {}
        return {"expiry": timedelta(seconds=max(1, math.ceil(expires_at - time.time())))}

    def write_object(self, client: Collection, name: str, data: bytes,
                     expires_at: float | None) -> None:
        client.upsert(name, data, UpsertOptions(transcoder=TRANSCODER,
                                                **self._expiry(expires_at)))

    def create_object(self, client: Collection, name: str, data: bytes,
                      expires_at: float | None) -> bool:
        try:
            client.insert(name, data, InsertOptions(transcoder=TRANSCODER,
                                                    **self._expiry(expires_at)))
        except DocumentExistsException:
            return False
        return True

    def replace_object(self, client: Collection, name: str, data: bytes,
                       expires_at: float | None, version: str) -> bool:
        try:
            client.replace(name, data, ReplaceOptions(cas=int(version), transcoder=TRANSCODER,
                                                      **self._expiry(expires_at)))
        except (CasMismatchException, DocumentNotFoundException):
            return False  # changed, or gone, since it was read
        return True

    def delete_object(self, client: Collection, name: str, version: str | None) -> None:
        try:
            client.remove(name)
        except DocumentNotFoundException:
            pass

    def list_objects(self, client: Collection, prefix: str) -> Iterable[ObjectListing]:
        """Nothing: Couchbase expires documents itself."""
        return []

    def classify(self, exc: Exception, what: str) -> BaseException | None:
        if isinstance(exc, AuthenticationException):
            return ConfigurationError(
                f"the Couchbase cluster at {self.where} refused the credentials to {what}; "
                f"check the user and password in the URL and the user's access to the bucket "
                f"{self.bucket!r}")
        if isinstance(exc, BucketNotFoundException):
            return ConfigurationError(
                f"the {self.described} does not exist; create it (kernel never creates "
                f"buckets), or name another in the URL")
        if isinstance(exc, ScopeNotFoundException):
            return ConfigurationError(f"the {self.described} has no default collection; the "
                                      f"store keeps results in the default one, as Celery's")
        if isinstance(exc, UnAmbiguousTimeoutException):
            return Unreached(f"{type(exc).__name__}: {exc}")
        if isinstance(exc, AmbiguousTimeoutException):
            return Lost(f"{type(exc).__name__}: {exc}")
        if isinstance(exc, (TemporaryFailException, RateLimitedException)):
            return Throttled(f"{type(exc).__name__} from Couchbase")
        if isinstance(exc, CouchbaseException):
            return KernelError(f"the {self.described} could not {what}: "
                               f"{type(exc).__name__} {exc}; check the cluster's log")
        return None


__all__ = ["CouchbaseStore", "RecordTranscoder", "document_key"]
