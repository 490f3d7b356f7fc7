"""The Riak result store, over Riak's HTTP API (httpx), in the layout Celery's Riak backend kept:
one object per key, ``/buckets/<bucket>/keys/<Celery's key>``, its body the record as a JSON
string (``application/json``: what the ``riak`` client Celery used wrote for a text value).
A value that is not UTF-8 text (a pickled record) is kept as it is, ``application/octet-stream``.

What `kernel.objectstore.ObjectStore` builds on here: ``PUT`` with ``If-None-Match: *`` (add,
a counter's first count) and with ``If-Match: <ETag>`` and the object's ``X-Riak-Vclock`` (a
counter's next counts), answered 412 where the condition fails. Riak checks the condition
before the write, not with it, so two writers at the same instant can both pass it (Riak's
documentation says so): adds are as safe as Riak allows and counters are not declared atomic;
chords run on ``celery.chord_unlock``, as Celery's did. Riak has no expiry per object (Bitcask's
is per backend): a record stored with one carries ``X-Riak-Meta-Kernel-Expires`` (Unix time),
which reads honour and ``kernel results cleanup`` deletes by (listing the bucket's keys, which
Riak warns is slow on a big cluster: run it from cron, not from every worker).

The ``riak`` client Celery used does not import on Python 3.10 and later, hence httpx.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from urllib.parse import quote, unquote, urlsplit

import httpx

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
    format_deadline,
    mask_url,
    parse_deadline,
)
from kernel_riak.plugin import RESULT_STORE_CAPABILITIES

#: Riak's HTTP port (Celery's default, 8087, is the protocol-buffers one kernel does not speak).
DEFAULT_PORT = 8098
#: the user metadata that holds a record's deadline.
EXPIRES_HEADER = "X-Riak-Meta-Kernel-Expires"
JSON = "application/json"
BINARY = "application/octet-stream"


class Refused(Exception):
    """Riak answered a status the primitive does not expect."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"{response.status_code} {response.text[:200]}")
        self.status = response.status_code


def encode_body(value: bytes) -> tuple[bytes, str]:
    """The body and content type of `value`: text as a JSON string, other bytes as they are."""
    try:
        text = value.decode()
    except UnicodeDecodeError:
        return value, BINARY
    return json.dumps(text).encode(), JSON


def decode_body(body: bytes, content_type: str, where: str) -> bytes:
    if not content_type.startswith(JSON):
        return body
    try:
        text = json.loads(body)
    except ValueError:
        text = None
    if not isinstance(text, str):
        raise KernelError(f"the Riak object {where} holds JSON that is not a record (a record "
                          f"is a JSON string); it was not written by Celery or kernel: "
                          f"delete it")
    return text.encode()


class RiakStore(ObjectStore[httpx.Client]):
    """``riak://[user:password@]host[:port]/bucket`` (port 8098, bucket ``celery`` by default,
    as Celery's), or the parts in ``riak_backend_settings`` (Celery's: ``host``, ``port``,
    ``bucket``, ``protocol``; the URL's parts win).

    kernel's keys there: ``bucket_type`` (the bucket's type, for ``/types/<type>/buckets/...``),
    ``scheme`` (``https`` for a node with security on, which takes the URL's user and password).
    ``connection_timeout`` (the app's ``broker_connection_timeout``, 4 s) is the most a call
    spends on an unreachable node before `ConnectionFailed`.
    """

    service = "Riak"

    def __init__(self, url: str, options: Options | None = None) -> None:
        options = options or {}
        reader = OptionReader(options, "Riak result store")
        settings = options.get("riak_backend_settings") or {}
        if not isinstance(settings, dict):
            raise ConfigurationError("riak_backend_settings must be a dict, as Celery's: "
                                     "{'host': ..., 'port': ..., 'bucket': ...}")
        parts = urlsplit(url)
        if parts.scheme != "riak":
            raise ConfigurationError(f"{mask_url(url)!r} is not a Riak URL; write "
                                     f"riak://host:port/bucket")
        try:
            port = int(parts.port or settings.get("port") or DEFAULT_PORT)
        except ValueError:
            raise ConfigurationError(f"the port of {mask_url(url)!r} is not a number") from None
        protocol = settings.get("protocol", "http")
        if protocol != "http":
            raise ConfigurationError(
                f"riak_backend_settings asks for the {protocol!r} protocol; kernel speaks "
                f"Riak's HTTP API: set 'protocol': 'http' and the node's HTTP port (8098)")
        scheme = str(settings.get("scheme", "http"))
        if scheme not in ("http", "https"):
            raise ConfigurationError(f"riak_backend_settings 'scheme' must be http or https, "
                                     f"not {scheme!r}")
        host = parts.hostname or str(settings.get("host", "localhost"))
        self.bucket = unquote(parts.path.strip("/")) or str(settings.get("bucket", "celery"))
        if not self.bucket.isascii() or "/" in self.bucket:
            raise ConfigurationError(f"Riak bucket names must be ASCII without '/' (Celery's "
                                     f"rule), not {self.bucket!r}")
        bucket_type = settings.get("bucket_type")
        user = unquote(parts.username or "") or settings.get("username")
        password = unquote(parts.password or "") or settings.get("password")
        self._auth = (str(user), str(password or "")) if user else None
        where = f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"
        typed = f"/types/{quote(str(bucket_type), safe='')}" if bucket_type else ""
        self._bucket_url = f"{where}{typed}/buckets/{quote(self.bucket, safe='')}"
        timeout = reader.number("connection_timeout", 4.0, positive=True)
        self._attempt = max(timeout / 4, 0.25)
        super().__init__(resource=f"bucket {self.bucket!r}", where=where, prefix="",
                         connection_timeout=timeout, capabilities=RESULT_STORE_CAPABILITIES)
        self.url = url

    def __repr__(self) -> str:
        return f"<RiakStore {mask_url(self.url)}>"

    # ------------------------------------------------------------------ the client

    def connect(self) -> httpx.Client:
        return httpx.Client(auth=self._auth, timeout=self._attempt)

    def create_container(self, client: httpx.Client) -> None:
        """Riak makes a bucket on its first write: nothing to create."""

    def close_client(self, client: httpx.Client) -> None:
        client.close()

    def _object_url(self, name: str) -> str:
        return f"{self._bucket_url}/keys/{quote(name, safe='')}"

    # ------------------------------------------------------------------ primitives

    def read_object(self, client: httpx.Client, name: str) -> StoredObject | None:
        response = client.get(self._object_url(name))
        if response.status_code == 404:
            return None
        if response.status_code == 300:
            raise KernelError(
                f"the Riak object {name!r} in the {self.described} has siblings (the bucket "
                f"keeps concurrent writes apart: allow_mult); use a bucket with allow_mult "
                f"false, as Celery's were")
        if response.status_code != 200:
            raise Refused(response)
        data = decode_body(response.content, response.headers.get("content-type", ""),
                           f"{name!r} in the {self.described}")
        return StoredObject(data, _version(response),
                            parse_deadline(response.headers.get(EXPIRES_HEADER)))

    def _put(self, client: httpx.Client, name: str, data: bytes, expires_at: float | None,
             headers: dict[str, str]) -> bool:
        body, content_type = encode_body(data)
        headers = {"Content-Type": content_type, **headers}
        if expires_at is not None:
            headers[EXPIRES_HEADER] = format_deadline(expires_at)
        response = client.put(self._object_url(name), content=body, headers=headers)
        if response.status_code == 412:
            return False
        if response.status_code not in (200, 201, 204):
            raise Refused(response)
        return True

    def write_object(self, client: httpx.Client, name: str, data: bytes,
                     expires_at: float | None) -> None:
        self._put(client, name, data, expires_at, {})

    def create_object(self, client: httpx.Client, name: str, data: bytes,
                      expires_at: float | None) -> bool:
        return self._put(client, name, data, expires_at, {"If-None-Match": "*"})

    def replace_object(self, client: httpx.Client, name: str, data: bytes,
                       expires_at: float | None, version: str) -> bool:
        etag, _, vclock = version.partition("\n")
        headers = {"If-Match": etag}
        if vclock:
            headers["X-Riak-Vclock"] = vclock  # the write descends from what was read
        return self._put(client, name, data, expires_at, headers)

    def delete_object(self, client: httpx.Client, name: str, version: str | None) -> None:
        # Riak conditions no delete; cleanup read the deadline just before.
        response = client.delete(self._object_url(name))
        if response.status_code not in (200, 204, 404):
            raise Refused(response)

    def list_objects(self, client: httpx.Client, prefix: str) -> Iterable[ObjectListing]:
        """Every key of the bucket (``?keys=true``), each object's deadline read with a
        ``HEAD``."""
        return list(self._listing(client, prefix))

    def _listing(self, client: httpx.Client, prefix: str) -> Iterator[ObjectListing]:
        response = client.get(f"{self._bucket_url}/keys", params={"keys": "true"})
        if response.status_code != 200:
            raise Refused(response)
        for name in response.json().get("keys", []):
            if not name.startswith(prefix):
                continue
            head = client.head(self._object_url(name))
            if head.status_code == 404:
                continue  # deleted since the listing
            if head.status_code != 200:
                raise Refused(head)
            yield ObjectListing(name, _version(head),
                                parse_deadline(head.headers.get(EXPIRES_HEADER)))

    def classify(self, exc: Exception, what: str) -> BaseException | None:
        if isinstance(exc, Refused):
            if exc.status in (401, 403):
                return ConfigurationError(
                    f"the {self.described} refused the credentials to {what} ({exc.status}); "
                    f"check the user and password in the URL (Riak's security takes them "
                    f"over https only: 'scheme': 'https' in riak_backend_settings)")
            if exc.status in (429, 503):
                return Throttled(f"{exc.status} from Riak")
            return KernelError(f"the {self.described} could not {what}: {exc}; check the "
                               f"node's log")
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            return Unreached(f"{type(exc).__name__}: {exc}")
        if isinstance(exc, httpx.TransportError):
            return Lost(f"{type(exc).__name__}: {exc}")
        return None


def _version(response: httpx.Response) -> str:
    """What a conditional write names: the ETag, and the vector clock the write descends from."""
    return f"{response.headers.get('etag', '')}\n{response.headers.get('x-riak-vclock', '')}"


__all__ = ["RiakStore", "decode_body", "encode_body"]
