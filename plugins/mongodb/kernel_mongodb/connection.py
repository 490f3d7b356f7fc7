"""URLs, clients and errors: a Celery ``mongodb://`` URL and ``mongodb_backend_settings`` to
the MongoClient of this process (`Connection`, one per pid: pymongo clients are not fork-safe),
operations tried again while the server restarts, and pymongo's failures as one sentence."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import pymongo
from bson.errors import InvalidDocument
from pymongo import errors

from kernel.plugin import (
    ConfigurationError,
    ConnectionFailed,
    KernelError,
    ResultRefused,
    ResultTooLarge,
    mask_url,
    retry_within,
)
from kernel_mongodb.documents import Document

T = TypeVar("T")

#: Celery's defaults (celery.backends.mongodb.MongoBackend).
DEFAULT_DATABASE = "celery"
TASK_COLLECTION = "celery_taskmeta"
GROUP_COLLECTION = "celery_groupmeta"
DEFAULT_POOL_SIZE = 10

#: server error codes for a document over MongoDB's 16 MiB: BSONObjectTooLarge, and an
#: update's result too large.
_TOO_LARGE_CODES = {10334, 17419}
#: AuthenticationFailed; Unauthorized (a user without the privilege).
_CREDENTIALS, _UNAUTHORIZED = 18, 13


@dataclass(frozen=True)
class Settings:
    """Where the store keeps what: the database, Celery's two collections and kernel's, and
    the MongoClient's keyword arguments (``host`` included)."""

    database: str
    task_collection: str
    group_collection: str
    kv_collection: str
    client: Mapping[str, Any] = field(default_factory=dict)


def settings(url: str, backend_settings: Mapping[str, Any], kv_collection: str,
             connection_timeout: float, pool_size: int) -> Settings:
    """The store's settings from Celery's URL and ``mongodb_backend_settings``, read as Celery
    reads them: the URL's database (else ``celery``), then the dict's ``database``,
    ``taskmeta_collection``, ``groupmeta_collection``, ``user``, ``password``, ``host`` and
    ``port`` (replacing the URL's hosts), ``options`` and every other key as MongoClient
    options. Nothing is connected or resolved here (``mongodb+srv`` looks up DNS on first
    use)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mongodb", "mongodb+srv"):
        raise ConfigurationError(f"{mask_url(url)} is not a MongoDB URL; write Celery's form, "
                                 f"mongodb://user:password@host:27017/database")
    config = dict(backend_settings)
    database = config.pop("database", None) or unquote(parts.path.lstrip("/")) or \
        DEFAULT_DATABASE
    task = config.pop("taskmeta_collection", TASK_COLLECTION)
    group = config.pop("groupmeta_collection", GROUP_COLLECTION)
    options = config.pop("options", None) or {}
    if not isinstance(options, Mapping):
        raise ConfigurationError(f"mongodb_backend_settings['options'] must be a dict of "
                                 f"MongoClient options, not {type(options).__name__}")
    for name, value in (("database", database), ("taskmeta_collection", task),
                        ("groupmeta_collection", group), ("mongodb_kv_collection",
                                                          kv_collection)):
        if not isinstance(value, str) or not value:
            raise ConfigurationError(f"MongoDB result store: {name} must be a name, "
                                     f"not {value!r}")
    host = _host(url, config)
    user, password = config.pop("user", None), config.pop("password", None)
    millis = max(1, round(connection_timeout * 1000))
    # Defaults only: pymongo lets a keyword argument win over the URL's option of that name
    # (case-insensitive), and the URL's must win, as in Celery.
    in_url = {name.lower() for name, _ in parse_qsl(urlsplit(host).query)}
    defaults = {name: value for name, value in (
        ("maxPoolSize", pool_size), ("serverSelectionTimeoutMS", millis),
        ("connectTimeoutMS", millis)) if name.lower() not in in_url}
    client: dict[str, Any] = {"host": host, **defaults, "tz_aware": True, "connect": False,
                              **options, **config}
    if user:
        client["username"] = user
    if password:
        client["password"] = password
    return Settings(database, task, group, kv_collection, client)


def _host(url: str, config: dict[str, Any]) -> str:
    """The URL, its hosts replaced by the settings' ``mongo_host``/``host`` and ``port``
    where given (Celery's rule); its credentials and options stay."""
    if not {"host", "port", "mongo_host"} & config.keys():
        return url
    host = config.pop("mongo_host", None) or config.pop("host", None) or "localhost"
    config.pop("host", None)
    port = config.pop("port", 27017)
    if isinstance(host, (list, tuple)):
        host = ",".join(str(h) for h in host)
    host = str(host)
    if host.startswith("mongodb"):
        return host
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    hosts = ",".join(h if ":" in h else f"{h}:{port}" for h in host.split(","))
    return urlunsplit(parts._replace(netloc=f"{credentials}@{hosts}" if credentials else hosts))


def _reason(exc: BaseException) -> str:
    """pymongo's message, on one line, without the topology description it appends."""
    text = str(exc) or type(exc).__name__
    for cut in (" (configured timeouts:", ", Timeout:", ", full error:"):
        text = text.split(cut, 1)[0]
    return mask_url(" ".join(text.split()))


def failure(exc: BaseException, url: str, doing: str) -> KernelError:
    """One sentence for a failed operation: what is wrong and what to do."""
    where = mask_url(url)
    reason = _reason(exc)
    code = getattr(exc, "code", None)
    if isinstance(exc, errors.BulkWriteError):  # the first write's own error says why
        first = (exc.details.get("writeErrors") or [{}])[0]
        code, reason = first.get("code", code), mask_url(str(first.get("errmsg") or reason))
    if isinstance(exc, errors.DocumentTooLarge) or code in _TOO_LARGE_CODES:
        return ResultTooLarge(f"a record is larger than MongoDB at {where} keeps in one "
                              f"document (16 MiB) ({reason}); return less from the task, or "
                              f"keep large values elsewhere and return a reference")
    if isinstance(exc, (InvalidDocument, OverflowError)):
        return ResultRefused(f"MongoDB at {where} cannot keep a record: BSON has no place for a "
                           f"value in it ({reason}); return values both the result "
                           f"serializer and BSON carry")
    if code == _CREDENTIALS or "authentication failed" in reason.lower():
        return ConfigurationError(f"MongoDB at {where} refused the credentials ({reason}); "
                                  f"check the user, password and authSource in the URL")
    if code == _UNAUTHORIZED:
        return ConfigurationError(f"MongoDB at {where} does not let the user {doing} "
                                  f"({reason}); grant it readWrite on the database")
    if isinstance(exc, errors.ConnectionFailure):
        return ConnectionFailed(f"cannot reach the MongoDB result store {where} to {doing} "
                                f"({reason}); check the server runs and the URL's host and "
                                f"port")
    if isinstance(exc, errors.ConfigurationError):
        return ConfigurationError(f"the MongoDB URL {where} or its options are not valid "
                                  f"({reason}); check them against pymongo.MongoClient")
    if isinstance(exc, errors.PyMongoError):
        return ConfigurationError(f"MongoDB at {where} refused to {doing} ({reason}); check "
                                  f"the user may write the database and its collections hold "
                                  f"Celery's documents")
    # pymongo raises plain errors where a server answers its handshake with something it
    # does not expect (nx-27017 answers a login without the SCRAM payload: KeyError).
    return ConnectionFailed(f"the MongoDB client failed to {doing} at {where} "
                            f"({type(exc).__name__}: {reason}); check the URL's credentials "
                            f"and that the server is a MongoDB")


class Connection:
    """The MongoClient of this process for `settings` (a prefork child makes its own and never
    touches its parent's), and `run`, which calls pymongo and turns its failures into one
    sentence."""

    def __init__(self, url: str, settings: Settings, connection_timeout: float) -> None:
        self.url = url
        self.settings = settings
        self.timeout = connection_timeout
        self._client: pymongo.MongoClient[Document] | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def client(self) -> pymongo.MongoClient[Document]:
        pid = os.getpid()
        client = self._client
        if client is not None and self._pid == pid:
            return client
        if self._pid != pid:
            self._lock = threading.Lock()  # one held by a thread of the parent stays held
        with self._lock:
            if self._pid != pid:
                # The parent's client is the parent's: pymongo resets it in the child, and
                # this process never uses or closes it.
                self._client = None
            if self._client is None:
                try:
                    self._client = pymongo.MongoClient(**self.settings.client)
                except (errors.PyMongoError, TypeError, ValueError) as exc:
                    raise failure(exc, self.url, "connect") from None
                self._pid = pid
            return self._client

    def collection(self, name: str) -> pymongo.collection.Collection[Document]:
        return self.client()[self.settings.database][name]

    def run(self, doing: str, work: Callable[[], T], retry: bool = True) -> T:
        """`work()` (pymongo calls only). While the server cannot be reached (a restart), it is
        tried again for up to ``connection_timeout`` seconds where sending it twice is
        harmless (`retry`); pymongo itself waits as long for a server to select. Failures
        raise `failure`'s sentence."""

        def failed(exc: BaseException) -> KernelError:
            return failure(exc, self.url, doing)

        try:
            if retry:
                return retry_within(self.timeout, work, (errors.AutoReconnect,), failed)
            return work()
        except KernelError:
            raise
        except Exception as exc:  # noqa: BLE001 - pymongo's failures, one sentence each
            raise failed(exc) from None

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._pid == os.getpid():
            client.close()
