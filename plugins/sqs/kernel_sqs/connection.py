"""Where the transport's requests go: Celery's ``sqs://`` URL and ``broker_transport_options``
read into `Settings`, boto3 clients (one per thread and credentials, a forked child makes its
own), queue URLs found or created, and each request sent again while SQS throttles or cannot
be reached, every failure turned into one sentence.

The URL is Celery's: ``sqs://`` (credentials from boto3's chain: environment, profile, role),
``sqs://KEY:SECRET@`` (URL-quote a secret holding ``/`` or ``+``), or with a host,
``sqs://KEY:SECRET@host:port``, an endpoint of ``http://host:port`` (``https`` with the option
``is_secure``), as kombu reads it. The endpoint is, first to last: the option ``endpoint_url``,
the URL's host, boto3's own (``AWS_ENDPOINT_URL_SQS``, ``AWS_ENDPOINT_URL``, the config file),
the region's.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

import boto3
import botocore.config
import botocore.credentials
import botocore.exceptions
import botocore.session

from kernel.plugin import (
    DEAD_LETTER_SUFFIX,
    ConfigurationError,
    ConnectionFailed,
    KernelError,
    OptionReader,
    aws_error,
    mask_url,
    retry_within,
)
from kernel_sqs.names import entity_name, is_fifo

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger("kernel.transport.sqs")

T = TypeVar("T")

#: kombu's defaults.
DEFAULT_REGION = "us-east-1"
DEFAULT_VISIBILITY_TIMEOUT = 1800
DEFAULT_WAIT_TIME_SECONDS = 10
DEFAULT_POLLING_INTERVAL = 1.0
#: SQS's longest long poll.
MAX_WAIT_TIME_SECONDS = 20

#: error codes that say "not now, send it again": nothing was done.
THROTTLED = frozenset({
    "ThrottlingException", "Throttling", "RequestThrottled", "OverLimit",
    "KmsThrottled", "TooManyRequestsException", "ServiceUnavailable", "InternalError",
    "InternalFailure", "RequestTimeout",
})

#: error codes that say the credentials are refused.
DENIED = frozenset({
    "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
    "InvalidSignatureException", "AccessDenied", "AccessDeniedException",
    "ExpiredToken", "ExpiredTokenException", "MissingAuthenticationToken",
    "IncompleteSignature", "InvalidSecurity", "AuthFailure",
})

#: error codes of a queue that is not there.
MISSING = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})

#: failures where the request never reached SQS (safe to send again).
UNSENT = (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError)

#: failures after which a request's effect is unknown.
LOST = (botocore.exceptions.ConnectionClosedError, botocore.exceptions.ReadTimeoutError,
        botocore.exceptions.HTTPClientError)


@dataclass(frozen=True)
class Predefined:
    """One entry of Celery's ``predefined_queues``: the queue's URL, and credentials of its own
    (else the transport's)."""

    url: str
    key: str | None = None
    secret: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class Settings:
    """The URL and the transport options, read and checked."""

    key: str | None
    secret: str | None
    region: str
    endpoint: str | None
    prefix: str = ""
    predefined: Mapping[str, Predefined] = field(default_factory=dict)
    visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT
    wait_time_seconds: int = DEFAULT_WAIT_TIME_SECONDS
    polling_interval: float = DEFAULT_POLLING_INTERVAL
    sts_role_arn: str | None = None
    sts_token_timeout: int = 900
    create_attributes: Mapping[str, str] = field(default_factory=dict)
    connection_timeout: float = 4.0

    def where(self) -> str:
        """The endpoint, for messages: never a credential."""
        endpoint = self.endpoint or os.environ.get("AWS_ENDPOINT_URL_SQS") or \
            os.environ.get("AWS_ENDPOINT_URL")
        return mask_url(endpoint) if endpoint else f"the AWS region {self.region}"


def shown_url(url: str) -> str:
    """`url` with everything before its last ``@`` (the key and secret) masked."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return mask_url(url)
    return f"{scheme}://**@{rest.rsplit('@', 1)[1]}"


def read_settings(url: str, options: Mapping[str, Any]) -> Settings:
    """`Settings` of an ``sqs://`` URL and its options; `ConfigurationError` with a sentence
    for what Celery would not take either."""
    shown = shown_url(url)
    parts = urlsplit(url)
    if parts.scheme != "sqs":
        raise ConfigurationError(f"{shown!r} is not an SQS URL; write sqs:// or "
                                 f"sqs://KEY:SECRET@")
    key = unquote(parts.username) if parts.username else None
    secret = unquote(parts.password) if parts.password else None
    if (key is None) != (secret is None):
        raise ConfigurationError(f"the SQS URL {shown!r} gives only one of the access key id "
                                 f"and the secret key; give both (sqs://KEY:SECRET@) or "
                                 f"neither (boto3's credential chain)")
    try:
        port = parts.port
    except ValueError:
        raise ConfigurationError(f"the port of the SQS URL {shown!r} is not a number (a "
                                 f"secret key with '/' or '+' must be URL-quoted: %2F, "
                                 f"%2B)") from None
    reader = OptionReader(options, "SQS transport")
    endpoint = reader.text("endpoint_url", "") or None
    if endpoint is None and parts.hostname:
        scheme = "https" if reader.boolean("is_secure", False) else "http"
        endpoint = f"{scheme}://{parts.hostname}" + (f":{port}" if port else "")
    region = reader.text("region", "") or boto3.session.Session().region_name or \
        DEFAULT_REGION
    wait = reader.integer("wait_time_seconds", DEFAULT_WAIT_TIME_SECONDS, minimum=0)
    if wait > MAX_WAIT_TIME_SECONDS:
        raise ConfigurationError(f"SQS transport option 'wait_time_seconds' must be 0 to "
                                 f"{MAX_WAIT_TIME_SECONDS} (SQS's longest poll), got {wait}")
    attributes: Any = reader.get("sqs-creation-attributes", {}) or {}
    if not isinstance(attributes, Mapping):
        raise ConfigurationError("SQS transport option 'sqs-creation-attributes' must be a "
                                 "mapping of queue attribute names to values")
    return Settings(
        key=key, secret=secret, region=region, endpoint=endpoint,
        prefix=reader.text("queue_name_prefix", ""),
        predefined=_predefined(reader.get("predefined_queues", {}) or {}),
        visibility_timeout=reader.integer("visibility_timeout", DEFAULT_VISIBILITY_TIMEOUT,
                                          minimum=0),
        wait_time_seconds=wait,
        polling_interval=reader.number("polling_interval", DEFAULT_POLLING_INTERVAL,
                                       minimum=0.0),
        sts_role_arn=reader.text("sts_role_arn", "") or None,
        sts_token_timeout=reader.integer("sts_token_timeout", 900, minimum=900),
        create_attributes={str(k): str(v) for k, v in attributes.items()},
        connection_timeout=reader.number("connection_timeout", 4.0, positive=True),
    )


def _predefined(raw: Any) -> dict[str, Predefined]:
    if not isinstance(raw, Mapping):
        raise ConfigurationError("SQS transport option 'predefined_queues' must map queue "
                                 "names to {'url': ..., 'access_key_id': ..., "
                                 "'secret_access_key': ...}")
    out: dict[str, Predefined] = {}
    for name, entry in raw.items():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("url"), str):
            raise ConfigurationError(f"predefined_queues[{name!r}] must give the queue's "
                                     f"'url' (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)")
        if is_fifo(str(name)) != entry["url"].endswith(".fifo"):
            raise ConfigurationError(f"predefined_queues[{name!r}]: a FIFO queue's name and "
                                     f"URL both end in .fifo, and only a FIFO queue's do")
        out[str(name)] = Predefined(entry["url"], entry.get("access_key_id"),
                                    entry.get("secret_access_key"), entry.get("region"))
    return out


class Transient(Exception):
    """A request SQS asked to be sent again, or one that never reached it."""


class Connection:
    """Requests to SQS for one transport. Thread-safe: each thread has clients of its own."""

    def __init__(self, settings: Settings, timeout: float) -> None:
        self.settings = settings
        self._config = botocore.config.Config(
            connect_timeout=timeout, read_timeout=timeout + MAX_WAIT_TIME_SECONDS,
            # kernel retries (retry_within), within connection_timeout: botocore does not.
            retries={"total_max_attempts": 1}, max_pool_connections=4)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._urls: dict[str, str] = {}
        self._credentials: botocore.credentials.RefreshableCredentials | None = None

    # ------------------------------------------------------------------ clients

    def client(self, queue: str | None = None) -> SQSClient:
        """This thread's client for `queue` (a predefined queue's credentials) or the
        transport's."""
        entry = self.settings.predefined.get(queue or "")
        key = (os.getpid(), entry)
        clients: dict[Any, SQSClient] = getattr(self._local, "clients", None) or {}
        if getattr(self._local, "pid", None) != os.getpid():
            clients = {}  # a forked child: the parent's connections are not its own
            self._local.pid = os.getpid()
        self._local.clients = clients
        client = clients.get(key)
        if client is None:
            client = clients[key] = self._new_client(entry)
        return client

    def _new_client(self, entry: Predefined | None) -> SQSClient:
        s = self.settings
        region = (entry.region if entry else None) or s.region
        if s.sts_role_arn:
            session = boto3.session.Session(botocore_session=self._assumed_role(),
                                            region_name=region)
        else:
            key = (entry.key if entry else None) or s.key
            secret = (entry.secret if entry else None) or s.secret
            # A session of the thread's own: boto3's default session is not thread-safe.
            session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret,
                                            region_name=region)
        return session.client("sqs", endpoint_url=s.endpoint, config=self._config)

    def _assumed_role(self) -> botocore.session.Session:
        """A botocore session whose credentials are the role ``sts_role_arn`` names, assumed
        with the transport's credentials and renewed before they expire."""
        with self._lock:
            if self._credentials is None:
                s = self.settings
                base = boto3.session.Session(aws_access_key_id=s.key,
                                             aws_secret_access_key=s.secret,
                                             region_name=s.region)

                def assume() -> dict[str, str]:
                    sts = base.client("sts", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_STS")
                                      or s.endpoint, config=self._config)
                    got = sts.assume_role(RoleArn=str(s.sts_role_arn),
                                          RoleSessionName=f"kernel-{uuid.uuid4().hex[:12]}",
                                          DurationSeconds=s.sts_token_timeout)["Credentials"]
                    expiry = got["Expiration"]
                    if isinstance(expiry, datetime) and expiry.tzinfo is None:
                        expiry = expiry.replace(tzinfo=timezone.utc)
                    return {"access_key": got["AccessKeyId"], "secret_key": got["SecretAccessKey"],
                            "token": got["SessionToken"], "expiry_time": expiry.isoformat()}

                self._credentials = botocore.credentials.RefreshableCredentials \
                    .create_from_metadata(metadata=self.send(assume, "AssumeRole"),
                                          refresh_using=assume, method="sts-assume-role")
            session = botocore.session.get_session()
            session._credentials = self._credentials  # type: ignore[attr-defined]  # botocore's
            # own way to hand a session refreshable keys (what boto3's AssumeRole provider does)
            return session

    def close(self) -> None:
        clients: dict[Any, SQSClient] = getattr(self._local, "clients", None) or {}
        for client in clients.values():
            client.close()
        self._local.clients = {}

    # ------------------------------------------------------------------ requests

    def send(self, request: Callable[[], T], what: str, *,
             timeout: float | None = None, resend_lost: bool = True) -> T:
        """`request()`, sent again while SQS throttles, answers 5xx or cannot be reached, for
        up to `timeout` (``connection_timeout``); `ClientError`s SQS answered with otherwise
        are raised as they are (see `refused`). `resend_lost` False: a request whose reply was
        lost (SQS may have done it) is not sent again, `ConnectionFailed` says so."""
        timeout = self.settings.connection_timeout if timeout is None else timeout

        def attempt() -> T:
            try:
                return request()
            except botocore.exceptions.ClientError as exc:
                code = error_code(exc)
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                if code in THROTTLED or status >= 500:
                    raise Transient(code) from exc
                raise
            except UNSENT as exc:
                raise Transient(type(exc).__name__) from exc
            except LOST as exc:
                if resend_lost:
                    raise Transient(type(exc).__name__) from exc
                raise

        def failed(exc: BaseException) -> KernelError:
            cause = exc.__cause__ or exc
            return ConnectionFailed(
                f"SQS at {self.settings.where()} did not take {what} within {timeout:g} s "
                f"({describe(cause)}); check the endpoint is up and reachable, or allow "
                f"longer (broker_connection_timeout)")

        try:
            return retry_within(timeout, attempt, (Transient,), failed)
        except LOST as exc:
            raise ConnectionFailed(
                f"lost the connection to SQS at {self.settings.where()} during {what} "
                f"({describe(exc)}); SQS may have taken it, so it was not sent again: check "
                f"the endpoint") from None
        except botocore.exceptions.NoCredentialsError:
            raise ConfigurationError(
                f"no AWS credentials for SQS at {self.settings.where()}: put them in the URL "
                f"(sqs://KEY:SECRET@) or where boto3 looks (AWS_ACCESS_KEY_ID and "
                f"AWS_SECRET_ACCESS_KEY, a profile, a role)") from None

    def refused(self, exc: botocore.exceptions.ClientError, what: str,
                queue: str) -> KernelError:
        """The sentence for an error SQS answered `what` on `queue` with."""
        code, where = error_code(exc), self.settings.where()
        if code in DENIED:
            return ConfigurationError(
                f"SQS at {where} refused the credentials for the queue {queue!r} ({code}); "
                f"check the access key and secret (URL, predefined_queues or boto3's chain) "
                f"and that they may use the queue")
        return KernelError(f"SQS at {where} refused {what} on the queue {queue!r} "
                           f"({describe(exc)}); check the queue and its permissions")

    def call(self, queue: str, operation: str, *, create: bool = True,
             timeout: float | None = None, resend_lost: bool = True, **request: Any) -> Any:
        """`operation` (a client method name) on `queue` (kernel's name), its ``QueueUrl``
        filled in; the queue created first when it is missing and `create` (a queue deleted
        meanwhile, or an emulator restarted, is found or created again)."""
        for last in (False, True):
            method = getattr(self.client(queue), operation)
            request["QueueUrl"] = self.url(queue, create=create)
            name = "".join(word.title() for word in operation.split("_"))  # SQS's action
            try:
                return self.send(partial(method, **request), f"{name} on the queue {queue!r}",
                                 timeout=timeout, resend_lost=resend_lost)
            except botocore.exceptions.ClientError as exc:
                if error_code(exc) in MISSING and not last and not self.settings.predefined:
                    self.forget(queue)
                    continue
                raise self.refused(exc, name, queue) from None
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ queues

    def sqs_name(self, queue: str) -> str:
        return entity_name(queue, self.settings.prefix)

    def url(self, queue: str, *, create: bool = True) -> str:
        """The URL of kernel's queue `queue`: predefined, found, or created (Celery's
        attributes: ``visibility_timeout``, FIFO for a ``.fifo`` name, plus
        ``sqs-creation-attributes``)."""
        known = self._urls.get(queue)
        if known is not None:
            return known
        s = self.settings
        entry = s.predefined.get(queue) or s.predefined.get(self.sqs_name(queue))
        if entry is None and queue.endswith(DEAD_LETTER_SUFFIX):
            target = self._redrive_target(queue[:-len(DEAD_LETTER_SUFFIX)])
            if target is not None:
                self._urls[queue] = target
                return target
        if s.predefined:
            if entry is None:
                raise ConfigurationError(
                    f"the queue {queue!r} is not in predefined_queues, and with "
                    f"predefined_queues set no queue is created; add it (its URL) there")
            self._urls[queue] = entry.url
            return entry.url
        name = self.sqs_name(queue)
        client = self.client()
        try:
            found = self.send(lambda: client.get_queue_url(QueueName=name)["QueueUrl"],
                              f"the URL of the queue {name!r}")
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) not in MISSING:
                raise self.refused(exc, "GetQueueUrl", queue) from None
            if not create:
                raise ConfigurationError(f"the SQS queue {name!r} does not exist at "
                                         f"{s.where()}") from None
            attributes = {"VisibilityTimeout": str(s.visibility_timeout), **s.create_attributes}
            if is_fifo(name):
                attributes["FifoQueue"] = "true"
            try:
                found = self.send(lambda: client.create_queue(
                    QueueName=name, Attributes=attributes)["QueueUrl"],  # type: ignore[arg-type]
                    f"creating the queue {name!r}")
            except botocore.exceptions.ClientError as again:
                raise self.refused(again, "CreateQueue", queue) from None
            log.info("created the SQS queue %s", name)
        self._urls[queue] = found
        return found

    def _redrive_target(self, queue: str) -> str | None:
        """The URL of the dead-letter queue `queue`'s redrive policy names, if it has one."""
        try:
            url = self.url(queue, create=False)
        except ConfigurationError:
            return None  # no such queue: kernel's own dead-letter queue then
        client = self.client(queue)
        try:
            policy = self.send(lambda: client.get_queue_attributes(
                QueueUrl=url, AttributeNames=["RedrivePolicy"]), f"the queue {queue!r}'s "
                f"redrive policy").get("Attributes", {}).get("RedrivePolicy")
            if not policy:
                return None
            arn = str(json.loads(policy)["deadLetterTargetArn"]).split(":")
            return self.send(lambda: client.get_queue_url(
                QueueName=arn[5], QueueOwnerAWSAccountId=arn[4])["QueueUrl"],
                f"the URL of the dead-letter queue {arn[5]!r}")
        except botocore.exceptions.ClientError as exc:
            raise self.refused(exc, "GetQueueAttributes", queue) from None

    def forget(self, queue: str) -> None:
        self._urls.pop(queue, None)


def error_code(exc: botocore.exceptions.ClientError) -> str:
    return aws_error(exc.response)[0]


def describe(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        code, message = aws_error(exc.response)
        return f"{code}: {message}"[:300]
    return f"{type(exc).__name__}: {exc}"[:300]


__all__ = ["Connection", "Predefined", "Settings", "describe", "error_code", "read_settings",
           "shown_url"]
