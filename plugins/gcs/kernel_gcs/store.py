"""The Google Cloud Storage result store, on google-cloud-storage, in Celery's GCS backend's
layout: one object per key, named ``gcs_base_path/key`` (the base path's slashes stripped, as
Celery joins them), holding the encoded record's bytes, in the bucket ``gcs_bucket``.

What `kernel.objectstore.ObjectStore` builds on here: uploads with ``ifGenerationMatch=0``
(add, a counter's first count) and ``ifGenerationMatch=<generation>`` (a counter's next
counts), refused with 412 where someone else wrote first; every write makes a new
generation.

Expiry is the object's Custom-Time, as Celery's backend keeps it with ``gcs_ttl``: the
deadline itself. Reads treat an object past it as absent; a bucket lifecycle rule (``Delete``
on ``daysSinceCustomTime``) has the service delete it, and ``kernel results cleanup`` does it
meanwhile or without the rule. A read is therefore two requests, the object's metadata and
then its bytes at that generation (Celery's reads one: it has no expiry to honour).

The client's own retries are off: the kit tries a request again within ``connection_timeout``
while the service throttles (429, 503) or cannot be reached. ``STORAGE_EMULATOR_HOST`` (the
client's own setting) points it at an emulator, with anonymous credentials.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import google.auth.exceptions
import requests
import urllib3.exceptions
from google.api_core import exceptions as api
from google.cloud import storage

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
from kernel_gcs.plugin import RESULT_STORE_CAPABILITIES

#: the URL's query keys, as Celery reads them (``ttl`` is kept for Celery's documented URL).
QUERY = {"gcs_project": "gcs_project", "ttl": "gcs_ttl", "gcs_ttl": "gcs_ttl",
         "gcs_threadpool_maxsize": "gcs_threadpool_maxsize"}


def _deadline(blob: Any) -> float | None:
    custom: datetime | None = blob.custom_time
    return None if custom is None else custom.timestamp()


class GCSStore(ObjectStore[storage.Bucket]):
    """``gs://bucket/base/path?gcs_project=P&ttl=S`` (Celery's), or ``gs://`` with the bucket
    in ``gcs_bucket``.

    Settings (Celery's): ``gcs_bucket``, ``gcs_project``, ``gcs_base_path``, ``gcs_ttl``,
    ``gcs_threadpool_maxsize``; kernel's: ``gcs_create_bucket`` (create a missing bucket),
    ``gcs_conditional_writes`` (off for an emulator that ignores preconditions).
    ``connection_timeout`` (the app's ``broker_connection_timeout``, 4 s) is the most a call
    spends before `ConnectionFailed`.
    """

    service = "Google Cloud Storage"

    def __init__(self, url: str, options: Options | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme != "gs" or parts.username or parts.password or parts.port:
            raise ConfigurationError(
                f"{mask_url(url)!r} is not a Google Cloud Storage result store URL; write "
                f"gs://bucket/base/path?gcs_project=PROJECT (credentials come from "
                f"GOOGLE_APPLICATION_CREDENTIALS or the environment's service account)")
        query = dict(parse_qsl(parts.query))
        unknown = sorted(set(query) - set(QUERY))
        if unknown:
            raise ConfigurationError(
                f"the Google Cloud Storage result store URL has unknown parameters "
                f"{unknown}; it takes {sorted(QUERY)}")
        merged: dict[str, Any] = {**(options or {}),
                                  **{QUERY[k]: v for k, v in query.items()}}
        if parts.hostname:
            merged["gcs_bucket"] = unquote(parts.hostname)
        if parts.path.strip("/"):
            merged["gcs_base_path"] = unquote(parts.path)
        reader = OptionReader(merged, "Google Cloud Storage result store")
        self.bucket_name = str(merged.get("gcs_bucket") or "")
        if not self.bucket_name:
            raise ConfigurationError(
                "the Google Cloud Storage result store needs a bucket: write gs://BUCKET or "
                "set gcs_bucket")
        self.project = merged.get("gcs_project") or None
        self.ttl = reader.number("gcs_ttl", 0, minimum=0)
        self._pool = reader.integer("gcs_threadpool_maxsize", 10, minimum=1)
        timeout = reader.number("connection_timeout", 4.0, positive=True)
        self._timeouts = (max(timeout / 4, 0.25), max(timeout / 2, 0.5))
        base = reader.text("gcs_base_path", "").strip("/")
        super().__init__(
            resource=f"bucket {self.bucket_name!r}", where=self._endpoint(), prefix=base + "/"
            if base else "", connection_timeout=timeout,
            capabilities=RESULT_STORE_CAPABILITIES,
            conditional=reader.boolean("gcs_conditional_writes", True),
            creates_container=reader.boolean("gcs_create_bucket", False),
            create_setting="gcs_create_bucket", container_setting="gcs_bucket")
        self._lifecycle_checked = False
        self._check_lock = threading.Lock()

    @staticmethod
    def _endpoint() -> str:
        emulator = os.environ.get("STORAGE_EMULATOR_HOST")
        return mask_url(emulator) if emulator else "storage.googleapis.com"

    # ------------------------------------------------------------------ the client

    def connect(self) -> storage.Bucket:
        client = storage.Client(project=self.project)
        # One pool per process, of the size Celery's setting names.
        adapter = requests.adapters.HTTPAdapter(pool_connections=self._pool,
                                                pool_maxsize=self._pool)
        for scheme in ("http://", "https://"):
            client._http.mount(scheme, adapter)
        return client.bucket(self.bucket_name)

    def create_container(self, client: storage.Bucket) -> None:
        try:
            client.client.create_bucket(client, retry=None, timeout=self._timeouts)
        except api.Conflict:
            pass

    def close_client(self, client: storage.Bucket) -> None:
        client.client.close()

    def _check_ttl(self, bucket: storage.Bucket) -> None:
        """With ``gcs_ttl``, the bucket must delete on Custom-Time, as Celery requires."""
        with self._check_lock:
            if self._lifecycle_checked or not self.ttl:
                return
            bucket.reload(retry=None, timeout=self._timeouts)
            if not any(rule.get("action", {}).get("type") == "Delete"
                       for rule in bucket.lifecycle_rules):
                raise ConfigurationError(
                    f"gcs_ttl is set, but the {self.described} has no lifecycle rule that "
                    f"deletes objects; add one (Delete, daysSinceCustomTime 0 or 1), or unset "
                    f"gcs_ttl to keep records for result_expires")
            self._lifecycle_checked = True

    def _expiry(self, expires_at: float | None) -> datetime | None:
        if self.ttl:
            return datetime.fromtimestamp(datetime.now(timezone.utc).timestamp() + self.ttl,
                                          timezone.utc)
        return None if expires_at is None else datetime.fromtimestamp(expires_at,
                                                                      timezone.utc)

    # ------------------------------------------------------------------ primitives

    def read_object(self, client: storage.Bucket, name: str) -> StoredObject | None:
        while True:
            blob = client.get_blob(name, retry=None, timeout=self._timeouts)
            if blob is None:
                return None
            try:
                # A fresh handle: the listing's mediaLink is the server's text, which an
                # emulator may not encode (a '?' in a name).
                data = client.blob(name).download_as_bytes(
                    if_generation_match=blob.generation, retry=None, timeout=self._timeouts)
            except (api.NotFound, api.PreconditionFailed):
                continue  # replaced or deleted between the two requests: read it again
            return StoredObject(data, str(blob.generation), _deadline(blob))

    def _upload(self, client: storage.Bucket, name: str, data: bytes,
                expires_at: float | None, generation: int | None) -> bool:
        self._check_ttl(client)
        blob = client.blob(name)
        blob.custom_time = self._expiry(expires_at)
        try:
            blob.upload_from_string(data, content_type="application/octet-stream",
                                    if_generation_match=generation, retry=None,
                                    timeout=self._timeouts)
        except api.PreconditionFailed:
            return False
        except api.NotFound:
            raise ContainerMissing() from None  # an upload finds no object missing
        return True

    def write_object(self, client: storage.Bucket, name: str, data: bytes,
                     expires_at: float | None) -> None:
        self._upload(client, name, data, expires_at, None)

    def create_object(self, client: storage.Bucket, name: str, data: bytes,
                      expires_at: float | None) -> bool:
        return self._upload(client, name, data, expires_at, 0)

    def replace_object(self, client: storage.Bucket, name: str, data: bytes,
                       expires_at: float | None, version: str) -> bool:
        return self._upload(client, name, data, expires_at, int(version))

    def delete_object(self, client: storage.Bucket, name: str, version: str | None) -> None:
        try:
            client.delete_blob(name, if_generation_match=None if version is None
                               else int(version), retry=None, timeout=self._timeouts)
        except (api.NotFound, api.PreconditionFailed):
            pass  # gone, or rewritten since it was listed (no longer expired)

    def list_objects(self, client: storage.Bucket, prefix: str) -> Iterable[ObjectListing]:
        return [ObjectListing(blob.name, str(blob.generation), _deadline(blob))
                for blob in client.list_blobs(prefix=prefix or None, retry=None,
                                              timeout=self._timeouts)]

    def classify(self, exc: Exception, what: str) -> BaseException | None:
        if isinstance(exc, (api.TooManyRequests, api.ServiceUnavailable,
                            api.InternalServerError, api.BadGateway, api.GatewayTimeout)):
            return Throttled(f"{exc.code} from Google Cloud Storage")
        if isinstance(exc, (api.Forbidden, api.Unauthorized, google.auth.exceptions.RefreshError)):
            return ConfigurationError(
                f"the {self.described} refused the credentials to {what} "
                f"({type(exc).__name__}); check GOOGLE_APPLICATION_CREDENTIALS (or the "
                f"service account) and its role on the bucket (Storage Object Admin)")
        if isinstance(exc, google.auth.exceptions.DefaultCredentialsError):
            return ConfigurationError(
                f"no Google credentials for the {self.described}; set "
                f"GOOGLE_APPLICATION_CREDENTIALS to a service account's key file, or run where "
                f"a service account is attached")
        if isinstance(exc, api.NotFound):
            return ContainerMissing()
        if isinstance(exc, requests.exceptions.ConnectTimeout) or (
                isinstance(exc, requests.exceptions.ConnectionError) and _never_connected(exc)):
            return Unreached(f"{type(exc).__name__}: could not connect")
        if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                            requests.exceptions.ChunkedEncodingError)):
            # sent, and the connection dropped or the reply never came: it may have applied
            return Lost(f"{type(exc).__name__}")
        if isinstance(exc, api.GoogleAPICallError):
            return KernelError(f"the {self.described} could not {what}: {exc.code} "
                               f"{str(exc.message)[:200]}; check the bucket's settings")
        return None


def _never_connected(exc: requests.exceptions.ConnectionError) -> bool:
    """True where the connection was refused (nothing was sent), not dropped after."""
    reason = exc.args[0] if exc.args else None
    return isinstance(getattr(reason, "reason", reason), urllib3.exceptions.NewConnectionError)


__all__ = ["GCSStore"]
