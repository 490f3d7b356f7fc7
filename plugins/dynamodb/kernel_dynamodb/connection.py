"""Where the store's requests go: Celery's ``dynamodb://`` URL read into a `Target`, and a
`Table` that sends each request through this process's boto3 client, with retries on what
DynamoDB asks to be sent again, and every failure turned into one sentence.

The URL is Celery's (``kombu``'s URL parsing, Celery's meaning)::

    dynamodb://[key:secret@]region[:port][/table][?read=N&write=M&ttl_seconds=S]

A host of ``localhost`` or an IP address is DynamoDB Local (or an emulator) at
``http://host:port``, in region ``us-east-1``; any other host is the AWS region. Without a key
and secret, boto3's credential chain (environment, profile, instance role) provides them. The
endpoint is, first to last: the ``dynamodb_endpoint_url`` setting (Celery's), the URL's local
host, boto3's own (``AWS_ENDPOINT_URL_DYNAMODB``, ``AWS_ENDPOINT_URL``, the config file), the
region's.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import ip_address
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import botocore.config
import botocore.exceptions

from kernel.plugin import (
    ConfigurationError,
    ConnectionFailed,
    KernelError,
    aws_error,
    mask_url,
    retry_within,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger("kernel.results.dynamodb")

T = TypeVar("T")

#: Celery's defaults: table ``celery``, 1 read and 1 write capacity unit.
DEFAULT_TABLE = "celery"
DEFAULT_CAPACITY = 1
LOCAL_REGION = "us-east-1"

#: error codes that say "not now, send it again": nothing was done.
THROTTLED = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "LimitExceededException", "TooManyRequestsException", "Throttling",
    "TransactionInProgressException",
})

#: error codes that say the credentials are refused.
DENIED = frozenset({
    "UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException",
    "AccessDeniedException", "ExpiredTokenException", "MissingAuthenticationTokenException",
    "SignatureDoesNotMatch", "IncompleteSignature", "AccessDenied",
})

#: failures where the request never reached DynamoDB (safe to send again, even an update).
UNSENT = (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError)

#: failures after which the request's effect is unknown (sent again only where that is safe).
LOST = (botocore.exceptions.ConnectionClosedError, botocore.exceptions.ReadTimeoutError,
        botocore.exceptions.HTTPClientError)


@dataclass(frozen=True)
class Target:
    """What a ``dynamodb://`` URL names, settings applied."""

    table: str
    region: str | None
    endpoint: str | None
    key: str | None
    secret: str | None
    read: int
    write: int
    ttl_seconds: int | None

    def where(self) -> str:
        """The endpoint for messages: never a credential."""
        if self.endpoint:
            return mask_url(self.endpoint)
        env = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get("AWS_ENDPOINT_URL")
        if env:
            return mask_url(env)
        return f"the AWS region {self.region or os.environ.get('AWS_DEFAULT_REGION', '?')}"


def shown_url(url: str) -> str:
    """`url` for a message: everything before its last ``@`` (the access key id and the
    secret, which may hold an unquoted ``/`` that URL parsing trips on) masked."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return mask_url(url)
    return f"{scheme}://**@{rest.rsplit('@', 1)[1]}"


def parse_target(url: str, endpoint_setting: str | None) -> Target:
    """The `Target` of a Celery ``dynamodb://`` URL; `ConfigurationError` with a sentence for
    a URL Celery would not take either."""
    shown = shown_url(url)
    parts = urlsplit(url)
    if parts.scheme != "dynamodb":
        raise ConfigurationError(f"{shown!r} is not a DynamoDB URL; write "
                                 f"dynamodb://key:secret@region/table?read=1&write=1")
    key = unquote(parts.username) if parts.username else None
    secret = unquote(parts.password) if parts.password else None
    if (key is None) != (secret is None):
        raise ConfigurationError(
            f"the DynamoDB URL {shown!r} gives only one of the access key id and the secret "
            f"key; give both (dynamodb://KEY:SECRET@region) or neither (boto3's credential "
            f"chain)")
    try:
        port = parts.port
    except ValueError:
        raise ConfigurationError(f"the port of the DynamoDB URL {shown!r} is not a number "
                                 f"(a secret key with '/' or '+' must be URL-quoted: %2F, "
                                 f"%2B)") from None
    host = parts.hostname or None
    endpoint = None
    region = host
    if host is not None and _local(host):
        if port is None:
            raise ConfigurationError(
                f"the DynamoDB URL {shown!r} names a local endpoint without its port; write "
                f"dynamodb://@{host}:8000/table")
        endpoint = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        region = LOCAL_REGION
    if endpoint_setting:
        endpoint = endpoint_setting
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    table = unquote(parts.path.strip("/")) or DEFAULT_TABLE
    return Target(table=table, region=region, endpoint=endpoint, key=key, secret=secret,
                  read=_count(query, "read", shown), write=_count(query, "write", shown),
                  ttl_seconds=_ttl(query, shown))


def _local(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ip_address(host)
    except ValueError:
        return False
    return True


def _count(query: dict[str, str], name: str, shown: str) -> int:
    raw = query.get(name, str(DEFAULT_CAPACITY))
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigurationError(f"the DynamoDB URL {shown!r} gives {name}={raw!r}; the "
                                 f"{name} capacity units are a whole number, at least 1")
    return value


def _ttl(query: dict[str, str], shown: str) -> int | None:
    raw = query.get("ttl_seconds")
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(
            f"the DynamoDB URL {shown!r} gives ttl_seconds={raw!r}; write a whole number of "
            f"seconds (a negative one turns the table's time to live off)") from None


class Transient(Exception):
    """A request DynamoDB asked to be sent again, or one that never reached it."""


class ConditionFailed(Exception):
    """A conditional write found the item not as the condition asked: nothing was written."""


class Table:
    """Requests to the store's table through this process's client (a forked child makes its
    own: a boto3 client's connection pool is not the child's). Thread-safe."""

    def __init__(self, target: Target, *, connection_timeout: float, timeout: float,
                 max_connections: int, prepare: Callable[[Table], None]) -> None:
        self.target = target
        self.connection_timeout = connection_timeout
        self._config = botocore.config.Config(
            connect_timeout=timeout, read_timeout=timeout,
            # kernel retries (retry_within), within connection_timeout: botocore does not.
            retries={"total_max_attempts": 1}, max_pool_connections=max_connections)
        self._prepare = prepare
        self._prepared = False
        self._lock = threading.Lock()
        self._pid = -1
        self._client: DynamoDBClient | None = None

    def client(self) -> DynamoDBClient:
        with self._lock:
            if self._client is not None and self._pid == os.getpid():
                return self._client
            target = self.target
            # A session of this process's own: boto3's default session is not fork-safe.
            session = boto3.session.Session(aws_access_key_id=target.key,
                                            aws_secret_access_key=target.secret,
                                            region_name=target.region)
            client = session.client("dynamodb", endpoint_url=target.endpoint,
                                    config=self._config)
            self._client, self._pid = client, os.getpid()
            return client

    def ready(self) -> None:
        """Once per store: `prepare` (the table found or created, its time to live); again
        after a failure, and after the table went missing."""
        if not self._prepared:
            self._prepare(self)
            self._prepared = True

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None and self._pid == os.getpid():
            client.close()

    def call(self, operation: str, *, resend: bool = True, **request: Any) -> Any:
        """`operation` (a client method name) with `request`; sent again while DynamoDB
        throttles, answers 5xx or cannot be reached, for up to ``connection_timeout``. `resend`
        False: an update that must not count twice is sent again only when it certainly was
        not applied (throttled, never sent). A table gone meanwhile (an emulator reset) is
        prepared again (created, where that is allowed) and the request sent once more."""
        self.ready()
        try:
            return self.send(operation, resend=resend, **request)
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise self.refused(exc, operation) from None
            self._prepared = False
            self.ready()
            try:
                return self.send(operation, resend=resend, **request)
            except botocore.exceptions.ClientError as again:
                raise self.refused(again, operation) from None

    def send(self, operation: str, *, resend: bool = True, **request: Any) -> Any:
        """`call` without preparing the table; a `ClientError` DynamoDB answered with is
        raised as it is (see `refused`)."""
        client = self.client()
        method = getattr(client, operation)

        def attempt() -> Any:
            try:
                return method(**request)
            except botocore.exceptions.ClientError as exc:
                code = error_code(exc)
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                if code in THROTTLED or (resend and status >= 500):
                    raise Transient(code) from exc
                raise
            except UNSENT as exc:
                raise Transient(type(exc).__name__) from exc
            except LOST as exc:
                if resend:
                    raise Transient(type(exc).__name__) from exc
                raise

        def failed(exc: BaseException) -> KernelError:
            cause = exc.__cause__ or exc
            return ConnectionFailed(
                f"DynamoDB at {self.target.where()} did not take a request for the table "
                f"{self.target.table!r} within {self.connection_timeout:g} s "
                f"({describe(cause)}); check the endpoint is up and the table's capacity, or "
                f"allow longer (broker_connection_timeout)")

        try:
            return retry_within(self.connection_timeout, attempt, (Transient,), failed)
        except LOST as exc:
            raise ConnectionFailed(
                f"lost the connection to DynamoDB at {self.target.where()} during an update "
                f"of the table {self.target.table!r} ({describe(exc)}); check the endpoint "
                f"(a worker retries the task)") from None
        except botocore.exceptions.NoCredentialsError:
            raise ConfigurationError(
                f"no AWS credentials for DynamoDB at {self.target.where()}: put them in the "
                f"URL (dynamodb://KEY:SECRET@region) or where boto3 looks "
                f"(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, a role)") from None

    def refused(self, exc: botocore.exceptions.ClientError,
                operation: str) -> KernelError | ConditionFailed:
        """The sentence for an error DynamoDB answered with (`ConditionFailed` for a
        condition that did not hold, which the store handles)."""
        code = error_code(exc)
        if code == "ConditionalCheckFailedException":
            return ConditionFailed(operation)
        where, table = self.target.where(), self.target.table
        if code in DENIED:
            return ConfigurationError(
                f"DynamoDB at {where} refused the credentials for the table {table!r} "
                f"({code}); check the access key and secret (URL or boto3's chain) and that "
                f"they may use the table")
        if code == "ResourceNotFoundException":
            return ConfigurationError(
                f"the DynamoDB table {table!r} does not exist at {where}; create it (hash key "
                f"'id', a string) or set dynamodb_create_table")
        return KernelError(f"DynamoDB at {where} refused {operation} on the table {table!r} "
                           f"({describe(exc)}); check the table and its permissions")

    def wait_active(self, what: str) -> None:
        """Until the table is ACTIVE (just created, by this or another process)."""
        deadline = time.monotonic() + max(60.0, self.connection_timeout)
        pause = 0.05
        while True:
            status = self.describe()["Table"].get("TableStatus")
            if status == "ACTIVE":
                return
            if time.monotonic() > deadline:
                raise KernelError(f"the DynamoDB table {self.target.table!r} at "
                                  f"{self.target.where()} is still {status} after {what}; "
                                  f"check it in the console")
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def describe(self) -> Any:
        return self.send("describe_table", TableName=self.target.table)


def error_code(exc: botocore.exceptions.ClientError) -> str:
    return aws_error(exc.response)[0]


def describe(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        code, message = aws_error(exc.response)
        return f"{code}: {message}"[:300]
    return f"{type(exc).__name__}: {exc}"[:300]


__all__ = ["DEFAULT_TABLE", "ConditionFailed", "Table", "Target", "Transient", "describe",
           "error_code", "parse_target", "shown_url"]
