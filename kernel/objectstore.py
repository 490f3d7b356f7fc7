"""Result stores on object storage (Amazon S3, Google Cloud Storage, Azure Blob Storage): the
whole `ResultStore` contract built on a few primitives a plugin implements for its client.

One object per key, named ``prefix + key`` (Celery's layout: the key as it is, after the
backend's base path), holding the encoded record's bytes and nothing else, so Celery's
backends read what kernel writes and the other way round. A plugin subclasses `ObjectStore`
and writes only its client's specifics::

    class BlobStore(ObjectStore[Client]):
        service = "Blob storage"
        def connect(self) -> Client: ...           # once per process
        def create_container(self, client) -> None: ...  # when the user's setting asks
        def read_object(self, client, name) -> StoredObject | None: ...
        def write_object(self, client, name, data, expires_at) -> None: ...
        def create_object(self, client, name, data, expires_at) -> bool: ...
        def replace_object(self, client, name, data, expires_at, version) -> bool: ...
        def delete_object(self, client, name, version) -> None: ...
        def list_objects(self, client, prefix) -> Iterable[ObjectListing]: ...
        def classify(self, exc, what) -> BaseException | None: ...

Guarantees built here from those primitives:

* Expiry is kernel's own deadline, which the plugin keeps beside the object (metadata
  ``kernel-expires``, Unix time; GCS: the Custom-Time Celery sets) and hands back as
  `StoredObject.expires_at`: reads treat an object past it as absent, `add` and `incr` as
  nothing stored, and `cleanup` (``kernel results cleanup``) deletes such objects. Celery's
  readers ignore it.
* `add` is a create-if-absent (S3 ``If-None-Match: *``, GCS ``ifGenerationMatch=0``, Azure
  ``If-None-Match: *``); an expired object is replaced only at the version read.
* `incr` is a compare-and-swap on the object's version (ETag, generation): read, add, write
  if the version is still the one read, again on a conflict; concurrent counts are never lost.
  A conditional write whose reply was lost is not sent again (it may have counted).
* Every call gives up within ``connection_timeout`` seconds: what a primitive's client raises
  is passed to `classify`, which names it a `Throttled` or `Unreached` failure (the service did
  not apply it: tried again with a backoff), a `Lost` one (it may have been applied: tried
  again only where sending twice is harmless), `ContainerMissing` (created when the user's
  setting asks, else a `ConfigurationError`), or an error of `kernel.plugin` to raise as it is.
* The client is made once per process (a forked child makes its own) and shared by threads.

Without conditional writes (an emulator that ignores them), a store passes
``conditional=False``: `add` then reads before it writes and `incr` is not atomic, and the
store says so in its capabilities (``atomic_counter=False``), so chords use
``celery.chord_unlock``.
"""

from __future__ import annotations

import os
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Generic, TypeVar

from kernel.errors import ConfigurationError, ConnectionFailed, KernelError
from kernel.fields import key_kind
from kernel.interfaces.results import ResultStore, ResultStoreCapabilities
from kernel.supervision import retry_within

__all__ = ["EXPIRES_METADATA", "ContainerMissing", "Lost", "ObjectListing", "ObjectStore",
           "StoredObject", "Throttled", "Unreached", "format_deadline", "parse_deadline"]

C = TypeVar("C")
T = TypeVar("T")

#: the metadata entry holding an object's deadline (Unix time, as text).
EXPIRES_METADATA = "kernel-expires"


@dataclass(frozen=True)
class StoredObject:
    """An object as read: its bytes, its version (what a conditional write names: an ETag,
    a generation) and its deadline from ``kernel-expires`` (None: kept until deleted)."""

    data: bytes
    version: str
    expires_at: float | None = None


@dataclass(frozen=True)
class ObjectListing:
    """One object of a listing, for `cleanup`: its name, version and deadline."""

    name: str
    version: str
    expires_at: float | None


class Retryable(Exception):
    """A failure `classify` found worth another attempt; `reason` says what happened."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Throttled(Retryable):
    """The service refused the request for now (S3 ``SlowDown``, HTTP 429 or 503): it was not
    applied, so it is sent again after a pause."""


class Unreached(Retryable):
    """The request never reached the service (connection refused, DNS, connect timeout)."""


class Lost(Retryable):
    """The request was sent and its reply lost (read timeout, connection reset): it may have
    been applied. Sent again only where that is harmless."""


class ContainerMissing(Exception):
    """The bucket or container is not there (never created, or deleted under the store)."""


def parse_deadline(text: str | None) -> float | None:
    """The deadline stored as ``kernel-expires`` metadata; None when absent or not a number
    (an object Celery wrote carries none)."""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def format_deadline(expires_at: float) -> str:
    return f"{expires_at:.3f}"


class ObjectStore(ResultStore, Generic[C]):
    """A result store on object storage; see the module's docstring for what a subclass
    implements and what it gets.

    `resource` names the bucket or container for messages (``"bucket 'results'"``), `where`
    the service's endpoint without credentials; `prefix` comes before every key (the base
    path, as the Celery backend joins it). `creates_container`: a missing bucket is created
    (`create_setting` names the setting that says so, `container_setting` the one that names
    the bucket: the message for a missing bucket suggests both).
    """

    #: the service, in messages: "S3", "Google Cloud Storage", "Azure Blob Storage".
    service = "object storage"

    def __init__(self, *, resource: str, where: str, prefix: str, connection_timeout: float,
                 capabilities: ResultStoreCapabilities, conditional: bool = True,
                 creates_container: bool = False, create_setting: str = "",
                 container_setting: str = "") -> None:
        self.resource = resource
        self.where = where
        self.prefix = prefix
        self.connection_timeout = connection_timeout
        self.conditional = conditional
        self.capabilities = capabilities if conditional else replace(capabilities,
                                                                     atomic_counter=False)
        self.creates_container = creates_container
        self.create_setting = create_setting
        self.container_setting = container_setting
        self._lock = threading.Lock()
        self._pid = -1
        self._client: C | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.resource} at {self.where}>"

    def __str__(self) -> str:
        return f"the {self.described}"

    @property
    def described(self) -> str:
        """``S3 bucket 'results' at http://…``: what every message names."""
        return f"{self.service} {self.resource} at {self.where}"

    # ------------------------------------------------------------------ primitives

    @abstractmethod
    def connect(self) -> C:
        """A client for this process (called once per process, under a lock). It MUST NOT
        look for the bucket: a missing one is found by the first call that needs it."""

    @abstractmethod
    def create_container(self, client: C) -> None:
        """Create the bucket or container (one that already exists is no error). Called only
        when the user's setting asks for it."""

    @abstractmethod
    def read_object(self, client: C, name: str) -> StoredObject | None:
        """The object `name`, or None where there is none."""

    @abstractmethod
    def write_object(self, client: C, name: str, data: bytes,
                     expires_at: float | None) -> None:
        """Store `data` as `name`, whatever is there."""

    @abstractmethod
    def create_object(self, client: C, name: str, data: bytes,
                      expires_at: float | None) -> bool:
        """Store `data` as `name` only where no object is, in one step on the service; False
        where one is. Without conditional writes (``conditional=False``) never called."""

    @abstractmethod
    def replace_object(self, client: C, name: str, data: bytes, expires_at: float | None,
                       version: str) -> bool:
        """Store `data` as `name` only while its version is `version`, in one step on the
        service; False where it changed or is gone."""

    @abstractmethod
    def delete_object(self, client: C, name: str, version: str | None) -> None:
        """Delete `name` (only at `version`, where the service can condition a delete and
        `version` is given); a missing object is no error."""

    @abstractmethod
    def list_objects(self, client: C, prefix: str) -> Iterable[ObjectListing]:
        """Every object whose name starts with `prefix`, with its deadline."""

    @abstractmethod
    def classify(self, exc: Exception, what: str) -> BaseException | None:
        """What `exc`, raised by the client while doing `what` (``"read 'name'"``), is (a
        primitive may also raise `ContainerMissing` itself): a
        `Throttled`, `Unreached` or `Lost` to try again, `ContainerMissing`, a
        `kernel.plugin` error (credentials refused: a `ConfigurationError`) to raise, or None
        to let `exc` through (a bug)."""

    # ------------------------------------------------------------------ calls

    def client(self) -> C:
        """This process's client, made on first use (a forked child makes its own)."""
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                self._client = self._call("connect", self.connect)
                self._pid = os.getpid()
            return self._client

    def object_name(self, key: str) -> str:
        """The object that holds `key`: the prefix, then the key (Celery's names). A service
        that mangles some names overrides it (and `key_of`) to escape just those."""
        return self.prefix + key

    def key_of(self, name: str) -> str:
        """The key object `name` holds: `object_name` undone."""
        return name[len(self.prefix):]

    def _call(self, what: str, operation: Callable[[], T], *, resend: bool = True) -> T:
        """`operation()` with the client's errors translated (see `classify`), tried again
        within ``connection_timeout`` while the service throttles or cannot be reached (and,
        with `resend`, when a reply was lost); a missing container is created once where
        the user allowed it."""
        created = False

        def attempt() -> T:
            nonlocal created
            try:
                return operation()
            except (KernelError, Retryable):
                raise
            except Exception as exc:
                problem = exc if isinstance(exc, ContainerMissing) else self.classify(exc, what)
                if problem is None:
                    raise
                if isinstance(problem, ContainerMissing):
                    if not self.creates_container or created:
                        raise self._missing() from exc
                    created = True
                    self.create_container(self.client())
                    return attempt()  # at once: the creation may have taken the time left
                raise problem from exc

        retry_on: tuple[type[BaseException], ...] = (Retryable,) if resend else (
            Throttled, Unreached)

        def failed(exc: BaseException) -> KernelError:
            reason = exc.reason if isinstance(exc, Retryable) else str(exc)
            return ConnectionFailed(
                f"cannot {what} in the {self.described} within {self.connection_timeout:g} s "
                f"({reason}); check the service is up and the endpoint is right, or allow "
                f"longer (broker_connection_timeout)")

        try:
            return retry_within(self.connection_timeout, attempt, retry_on, failed)
        except Lost as exc:  # not sent again: it may have been applied
            raise ConnectionFailed(
                f"lost the reply of the {self.described} while trying to {what} "
                f"({exc.reason}); it may or may not have been applied: check the service "
                f"(a worker retries the task)") from exc

    def _missing(self) -> ConfigurationError:
        allow = (f", set {self.create_setting} = True to have kernel create it"
                 if self.create_setting and not self.creates_container else "")
        other = f", or name another with {self.container_setting}" \
            if self.container_setting else ""
        return ConfigurationError(f"the {self.described} does not exist; create it{allow}{other}")

    def _read(self, name: str) -> StoredObject | None:
        client = self.client()
        return self._call(f"read {name!r}", partial(self.read_object, client, name))

    @staticmethod
    def _live(found: StoredObject | None, now: float) -> StoredObject | None:
        if found is None or (found.expires_at is not None and found.expires_at <= now):
            return None
        return found

    @staticmethod
    def _deadline(expires: float | None) -> float | None:
        return None if expires is None else time.time() + expires

    # ------------------------------------------------------------------ the contract

    def set(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        client, deadline = self.client(), self._deadline(expires)
        for key, value in items:
            name = self.object_name(key)
            self._call(f"store {name!r}",
                       partial(self.write_object, client, name, value, deadline))

    def add(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        client, deadline = self.client(), self._deadline(expires)
        for key, value in items:
            name = self.object_name(key)
            if not self.conditional:
                if self._live(self._read(name), time.time()) is None:
                    self._call(f"store {name!r}",
                               partial(self.write_object, client, name, value, deadline))
                continue
            while not self._call(f"create {name!r}",
                                 partial(self.create_object, client, name, value, deadline)):
                found = self._read(name)
                if found is None:
                    continue  # deleted since: create it again
                if self._live(found, time.time()) is None:
                    # Expired: replace exactly the version read; a writer that got there
                    # first keeps its value.
                    self._call(f"replace {name!r}", partial(
                        self.replace_object, client, name, value, deadline, found.version))
                break

    def get(self, key: str) -> bytes | None:
        found = self._live(self._read(self.object_name(key)), time.time())
        return None if found is None else found.data

    def delete(self, keys: Sequence[str]) -> None:
        client = self.client()
        for key in keys:
            name = self.object_name(key)
            self._call(f"delete {name!r}", partial(self.delete_object, client, name, None))

    def incr(self, key: str, amount: int = 1, expires: float | None = None) -> int:
        """Read, add, write if the version is still the one read; a conflict (another count
        came first) reads again. Without conditional writes: read, add, write."""
        client, name = self.client(), self.object_name(key)
        while True:
            found = self._read(name)
            live = self._live(found, time.time())
            try:
                value = (int(live.data) if live is not None else 0) + amount
            except ValueError:
                raise KernelError(
                    f"the object {name!r} in the {self.described} holds no counter; delete "
                    f"it (it was not written by kernel's incr)") from None
            data, deadline = b"%d" % value, self._deadline(expires)
            if not self.conditional:
                self._call(f"store {name!r}",
                           partial(self.write_object, client, name, data, deadline))
                return value
            if found is None:
                done = self._call(f"create {name!r}", partial(
                    self.create_object, client, name, data, deadline), resend=False)
            else:
                done = self._call(f"replace {name!r}", partial(
                    self.replace_object, client, name, data, deadline, found.version),
                    resend=False)
            if done:
                return value

    def cleanup(self) -> dict[str, int]:
        """Delete every object under the prefix past its ``kernel-expires`` (each at the
        version listed, where the service can condition a delete, so one rewritten meanwhile
        stays); how many, by kind (``task``, ``group``, ``other``)."""
        client = self.client()
        listing = self._call("list objects", lambda: list(self.list_objects(client,
                                                                            self.prefix)))
        now, removed = time.time(), {"task": 0, "group": 0, "other": 0}
        for entry in listing:
            if entry.expires_at is None or entry.expires_at > now:
                continue
            self._call(f"delete {entry.name!r}",
                       partial(self.delete_object, client, entry.name, entry.version))
            kind = key_kind(self.key_of(entry.name))
            removed[kind[0] if kind else "other"] += 1
        return removed

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None and self._pid == os.getpid():
            self.close_client(client)

    def close_client(self, client: C) -> None:  # noqa: B027 - most clients need nothing
        """Release `client`'s connections (by default nothing: the client's own pool closes
        with it)."""
