"""The S3 result store, on boto3, in Celery's S3 backend's layout: one object per key, named
``s3_base_path + key`` (joined as it is, as Celery joins them), holding the encoded record's
bytes, in the bucket ``s3_bucket``.

What `kernel.objectstore.ObjectStore` builds on here: ``PutObject`` with ``If-None-Match: *``
(add, a counter's first count) and with ``If-Match: <ETag>`` (a counter's next counts), both
answered 412 where someone else wrote first. S3 has no expiry per object (lifecycle rules are
per bucket and count in days): a record stored with one carries the user metadata
``x-amz-meta-kernel-expires`` (Unix time), which reads honour and ``kernel results cleanup``
deletes by. Celery's backend keeps results until something deletes them.

The ETag of a simple upload is the content's MD5, so a write of the very bytes already there
keeps the version; a counter is always written with a new value, except one that expired
and starts again at its old value, whose concurrent restarts may both succeed.

boto3's own retries are off: the kit tries a request again within ``connection_timeout``
while S3 throttles (``SlowDown``, 429, 503) or cannot be reached.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import boto3
import botocore.config
import botocore.exceptions

from kernel.plugin import (
    EXPIRES_METADATA,
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
    format_deadline,
    mask_url,
    parse_deadline,
)
from kernel_s3.plugin import RESULT_STORE_CAPABILITIES

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
else:
    S3Client = Any

#: error codes S3 (and S3-compatible services) answer to slow a client down.
THROTTLING = frozenset({"SlowDown", "Throttling", "ThrottlingException", "TooManyRequests",
                        "RequestLimitExceeded", "ServiceUnavailable", "InternalError",
                        "RequestTimeout"})
#: codes of credentials S3 does not accept.
DENIED = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                    "ExpiredToken", "InvalidToken", "AllAccessDisabled"})
#: a conditional write that lost: someone else's object is there, or it changed.
CONFLICT = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})


def _code(exc: botocore.exceptions.ClientError) -> tuple[str, int]:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(error.get("Code", "")), int(status)


class S3Store(ObjectStore[S3Client]):
    """``s3://`` with the bucket in ``s3_bucket`` (Celery's), or ``s3://bucket/base/path``.

    Settings (Celery's): ``s3_bucket``, ``s3_base_path``, ``s3_endpoint_url``, ``s3_region``,
    ``s3_access_key_id`` and ``s3_secret_access_key`` (unset: boto3's credential chain);
    kernel's: ``s3_create_bucket`` (create a missing bucket), ``s3_conditional_writes`` (off
    for a service that ignores them). ``connection_timeout`` (the app's
    ``broker_connection_timeout``, 4 s) is the most a call spends before `ConnectionFailed`.
    """

    service = "S3"

    def __init__(self, url: str, options: Options | None = None) -> None:
        reader = OptionReader(options or {}, "S3 result store")
        parts = urlsplit(url)
        if parts.scheme != "s3" or parts.query or parts.username or parts.password:
            raise ConfigurationError(
                f"{mask_url(url)!r} is not an S3 result store URL; write s3:// with the "
                f"bucket in s3_bucket, or s3://bucket/base/path (credentials go in "
                f"s3_access_key_id and s3_secret_access_key, or boto3's chain)")
        named = unquote(parts.hostname or "")
        setting = _optional(reader, "s3_bucket")
        if named and setting and named != setting:
            raise ConfigurationError(
                f"the S3 result store URL names the bucket {named!r} and s3_bucket "
                f"{setting!r}; name it once")
        self.bucket = named or setting or ""
        if not self.bucket:
            raise ConfigurationError(
                "the S3 result store needs a bucket: set s3_bucket (or write s3://bucket)")
        prefix = unquote(parts.path.lstrip("/")) or _optional(reader, "s3_base_path") or ""
        self.endpoint_url = _optional(reader, "s3_endpoint_url")
        self.region = _optional(reader, "s3_region")
        self._key_id = _optional(reader, "s3_access_key_id")
        self._secret = _optional(reader, "s3_secret_access_key")
        if bool(self._key_id) != bool(self._secret):
            raise ConfigurationError(
                "the S3 result store has only one of s3_access_key_id and "
                "s3_secret_access_key; set both, or neither for boto3's credential chain")
        timeout = reader.number("connection_timeout", 4.0, positive=True)
        self._attempt_timeout = max(timeout / 4, 0.25)
        where = mask_url(self.endpoint_url) if self.endpoint_url else \
            f"AWS ({self.region or 'the default region'})"
        super().__init__(
            resource=f"bucket {self.bucket!r}", where=where, prefix=prefix,
            connection_timeout=timeout, capabilities=RESULT_STORE_CAPABILITIES,
            conditional=reader.boolean("s3_conditional_writes", True),
            creates_container=reader.boolean("s3_create_bucket", False),
            create_setting="s3_create_bucket", container_setting="s3_bucket")
        self._session_lock = threading.Lock()

    # ------------------------------------------------------------------ the client

    def connect(self) -> S3Client:
        # Sessions are not thread-safe to create; the client they make is.
        with self._session_lock:
            session = boto3.session.Session(aws_access_key_id=self._key_id,
                                            aws_secret_access_key=self._secret,
                                            region_name=self.region)
            config = botocore.config.Config(
                connect_timeout=self._attempt_timeout, read_timeout=self._attempt_timeout * 2,
                retries={"total_max_attempts": 1}, max_pool_connections=32)
            client: S3Client = session.client("s3", endpoint_url=self.endpoint_url,
                                              config=config)
            return client

    def create_container(self, client: S3Client) -> None:
        region = client.meta.region_name
        try:
            if region and region != "us-east-1":
                client.create_bucket(Bucket=self.bucket, CreateBucketConfiguration={
                    "LocationConstraint": region})  # type: ignore[typeddict-item]
            else:
                client.create_bucket(Bucket=self.bucket)
        except botocore.exceptions.ClientError as exc:
            if _code(exc)[0] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def close_client(self, client: S3Client) -> None:
        client.close()

    # ------------------------------------------------------------------ primitives

    def read_object(self, client: S3Client, name: str) -> StoredObject | None:
        try:
            reply = client.get_object(Bucket=self.bucket, Key=name)
        except botocore.exceptions.ClientError as exc:
            if _code(exc)[0] in ("NoSuchKey", "404"):
                return None
            raise
        with reply["Body"] as body:
            data = body.read()
        return StoredObject(data, reply["ETag"],
                            parse_deadline(reply.get("Metadata", {}).get(EXPIRES_METADATA)))

    def _put(self, client: S3Client, name: str, data: bytes, expires_at: float | None,
             **condition: str) -> bool:
        metadata = {} if expires_at is None else {EXPIRES_METADATA: format_deadline(expires_at)}
        try:
            client.put_object(Bucket=self.bucket, Key=name, Body=data, Metadata=metadata,
                              **condition)  # type: ignore[arg-type]
        except botocore.exceptions.ClientError as exc:
            code = _code(exc)[0]
            if code in CONFLICT or (condition.get("IfMatch") and code == "NoSuchKey"):
                return False
            raise
        return True

    def write_object(self, client: S3Client, name: str, data: bytes,
                     expires_at: float | None) -> None:
        self._put(client, name, data, expires_at)

    def create_object(self, client: S3Client, name: str, data: bytes,
                      expires_at: float | None) -> bool:
        return self._put(client, name, data, expires_at, IfNoneMatch="*")

    def replace_object(self, client: S3Client, name: str, data: bytes,
                       expires_at: float | None, version: str) -> bool:
        return self._put(client, name, data, expires_at, IfMatch=version)

    def delete_object(self, client: S3Client, name: str, version: str | None) -> None:
        # Unconditional: not every S3-compatible service conditions a delete. cleanup reads
        # the deadline again just before (list_objects), which narrows the window.
        client.delete_object(Bucket=self.bucket, Key=name)

    def list_objects(self, client: S3Client, prefix: str) -> Iterable[ObjectListing]:
        """S3 lists no user metadata: each object's deadline is read with a ``HEAD``."""
        return list(self._listing(client, prefix))

    def _listing(self, client: S3Client, prefix: str) -> Iterator[ObjectListing]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                 Prefix=prefix)
        for page in pages:
            for entry in page.get("Contents", []):
                name = entry["Key"]
                try:
                    head = client.head_object(Bucket=self.bucket, Key=name)
                except botocore.exceptions.ClientError as exc:
                    if _code(exc)[1] == 404:
                        continue  # deleted since the listing
                    raise
                yield ObjectListing(name, head["ETag"],
                                    parse_deadline(head.get("Metadata", {}).get(
                                        EXPIRES_METADATA)))

    def classify(self, exc: Exception, what: str) -> BaseException | None:
        if isinstance(exc, botocore.exceptions.ClientError):
            code, status = _code(exc)
            if code == "NoSuchBucket":
                return ContainerMissing()
            if code in THROTTLING or status in (429, 500, 502, 503, 504):
                return Throttled(f"{code or status} from S3")
            if code in DENIED or status == 403:
                return ConfigurationError(
                    f"the {self.described} refused the credentials to {what} ({code}); "
                    f"check s3_access_key_id and s3_secret_access_key (or what boto3's chain "
                    f"finds: AWS_ACCESS_KEY_ID, ~/.aws/credentials, a role) and the bucket's "
                    f"policy")
            message = str(exc.response.get("Error", {}).get("Message", ""))[:200]
            return KernelError(f"the {self.described} could not {what}: {code or status} "
                               f"{message}; check the bucket's settings and permissions")
        if isinstance(exc, (botocore.exceptions.NoCredentialsError,
                            botocore.exceptions.PartialCredentialsError)):
            return ConfigurationError(
                f"no AWS credentials for the {self.described}; set s3_access_key_id and "
                f"s3_secret_access_key, or give boto3's chain some (AWS_ACCESS_KEY_ID and "
                f"AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, an instance or task role)")
        if isinstance(exc, (botocore.exceptions.EndpointConnectionError,
                            botocore.exceptions.ConnectTimeoutError)):
            return Unreached(f"{type(exc).__name__}: {exc}")
        if isinstance(exc, (botocore.exceptions.ConnectionError,
                            botocore.exceptions.HTTPClientError,
                            botocore.exceptions.ResponseStreamingError)):
            return Lost(f"{type(exc).__name__}: {exc}")
        return None


def _optional(reader: OptionReader, name: str) -> str | None:
    value = reader.get(name, None)
    if value is None or value == "":
        return None
    return reader.text(name, "")


__all__ = ["S3Store"]
