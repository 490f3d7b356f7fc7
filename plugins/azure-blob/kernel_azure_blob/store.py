"""The Azure Blob Storage result store, on azure-storage-blob, in Celery's AzureBlockBlob
backend's layout: one block blob per key, named ``azureblockblob_base_path + key`` (joined as
it is, as Celery joins them), holding the encoded record's bytes, in the container
``azureblockblob_container_name`` (``celery``), created on first use as Celery creates it.

What `kernel.objectstore.ObjectStore` builds on here: uploads with ``If-None-Match: *`` (add,
a counter's first count) and with ``If-Match: <ETag>`` (a counter's next counts); the ETag
changes with every write. Blob Storage has no expiry per blob (lifecycle management rules are
per account and count in days): a record stored with one carries the metadata
``kernel_expires`` (Unix time; Azure metadata names are C# identifiers, so ``_`` for ``-``),
which reads honour and ``kernel results cleanup`` deletes by, each delete conditioned on the
ETag listed. Celery's backend keeps results until something deletes them.

The SDK's own retries are off: the kit tries a request again within ``connection_timeout``
while the service throttles (429, 503) or cannot be reached.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote

from azure.core import MatchConditions
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobServiceClient, ContainerClient

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
from kernel_azure_blob.plugin import RESULT_STORE_CAPABILITIES

PREFIX = "azureblockblob://"
#: Azure metadata names must be C# identifiers.
METADATA = EXPIRES_METADATA.replace("-", "_")
#: what starts the name of a blob whose key had to be escaped.
ESCAPE = "kernel~"
#: how Celery names a credential instead of a connection string (``NAME@ACCOUNT_URL``).
CREDENTIALS = ("DefaultAzureCredential", "ManagedIdentityCredential")


def connection_fields(text: str) -> dict[str, str]:
    """The ``Key=value;`` fields of a connection string, by lower-case key."""
    fields = {}
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            fields[key.strip().lower()] = value.strip()
    return fields


class AzureBlobStore(ObjectStore[ContainerClient]):
    """``azureblockblob://CONNECTION_STRING`` (an account's connection string, as the portal
    shows it, or Azurite's), or ``azureblockblob://DefaultAzureCredential@ACCOUNT_URL``
    (needs azure-identity).

    Settings (Celery's): ``azureblockblob_container_name``, ``azureblockblob_base_path``,
    ``azureblockblob_connection_timeout``, ``azureblockblob_read_timeout``; kernel's
    ``azureblockblob_create_container`` (on, as Celery). ``connection_timeout`` (the app's
    ``broker_connection_timeout``, 4 s) is the most a call spends before `ConnectionFailed`;
    each attempt connects within a quarter of it and reads within it at most.
    """

    service = "Azure Blob Storage"

    def __init__(self, url: str, options: Options | None = None) -> None:
        reader = OptionReader(options or {}, "Azure Blob Storage result store")
        if not url.startswith(PREFIX) or not url[len(PREFIX):].strip():
            raise ConfigurationError(
                "an Azure Blob Storage result store URL is azureblockblob://CONNECTION_STRING "
                "(DefaultEndpointsProtocol=https;AccountName=...;AccountKey=...), or "
                "azureblockblob://DefaultAzureCredential@https://ACCOUNT.blob.core.windows.net")
        self._connection = url[len(PREFIX):]
        self._credential, at, account_url = self._connection.partition("@")
        self._account_url = account_url
        if at and self._credential in CREDENTIALS:
            where = mask_url(account_url)
        else:
            self._credential = ""
            fields = connection_fields(self._connection)
            if "accountname" not in fields and "blobendpoint" not in fields:
                raise ConfigurationError(
                    "the Azure Blob Storage connection string after azureblockblob:// names "
                    "no account (AccountName=...) or BlobEndpoint; copy it from the storage "
                    "account's Access keys page")
            where = mask_url(fields.get("blobendpoint", "")) or \
                f"https://{fields['accountname']}.blob.core.windows.net"
        self.container = reader.text("azureblockblob_container_name", "celery")
        timeout = reader.number("connection_timeout", 4.0, positive=True)
        self._connect_timeout = min(
            reader.number("azureblockblob_connection_timeout", 20, positive=True), timeout / 4)
        self._read_timeout = min(reader.number("azureblockblob_read_timeout", 120,
                                               positive=True), timeout)
        super().__init__(
            resource=f"container {self.container!r}", where=where,
            prefix=reader.text("azureblockblob_base_path", ""), connection_timeout=timeout,
            capabilities=RESULT_STORE_CAPABILITIES,
            creates_container=reader.boolean("azureblockblob_create_container", True),
            create_setting="azureblockblob_create_container",
            container_setting="azureblockblob_container_name")

    def object_name(self, key: str) -> str:
        """Celery's name (the base path, then the key), except for a key Blob Storage would
        change: it turns ``\\`` into ``/``, so such a key (or one that starts with the
        escape) is stored percent-encoded after ``kernel~``. Celery's keys never are."""
        if "\\" in key or key.startswith(ESCAPE):
            return self.prefix + ESCAPE + quote(key, safe="")
        return self.prefix + key

    def key_of(self, name: str) -> str:
        key = name[len(self.prefix):]
        return unquote(key[len(ESCAPE):]) if key.startswith(ESCAPE) else key

    # ------------------------------------------------------------------ the client

    def connect(self) -> ContainerClient:
        timeouts: dict[str, Any] = {"connection_timeout": self._connect_timeout,
                                    "read_timeout": self._read_timeout, "retry_total": 0}
        if self._credential:
            try:
                import azure.identity
            except ImportError:
                raise ConfigurationError(
                    f"azureblockblob://{self._credential}@... needs azure-identity: pip "
                    f"install 'kernel-azure-blob[identity]'") from None
            credential = getattr(azure.identity, self._credential)()
            service = BlobServiceClient(self._account_url, credential=credential, **timeouts)
        else:
            service = BlobServiceClient.from_connection_string(self._connection, **timeouts)
        return service.get_container_client(self.container)

    def create_container(self, client: ContainerClient) -> None:
        try:
            client.create_container()
        except ResourceExistsError:
            pass

    def close_client(self, client: ContainerClient) -> None:
        client.close()

    # ------------------------------------------------------------------ primitives

    def read_object(self, client: ContainerClient, name: str) -> StoredObject | None:
        try:
            download = client.download_blob(name)
            data = download.readall()
        except ResourceNotFoundError as exc:
            if _code(exc) == "ContainerNotFound":
                raise
            return None
        properties = download.properties
        return StoredObject(data, str(properties.etag),
                            parse_deadline((properties.metadata or {}).get(METADATA)))

    def _upload(self, client: ContainerClient, name: str, data: bytes,
                expires_at: float | None, **condition: Any) -> None:
        metadata = None if expires_at is None else {METADATA: format_deadline(expires_at)}
        client.upload_blob(name, data, metadata=metadata, **condition)

    def write_object(self, client: ContainerClient, name: str, data: bytes,
                     expires_at: float | None) -> None:
        self._upload(client, name, data, expires_at, overwrite=True)

    def create_object(self, client: ContainerClient, name: str, data: bytes,
                      expires_at: float | None) -> bool:
        try:
            self._upload(client, name, data, expires_at, overwrite=False)
        except ResourceExistsError:
            return False
        return True

    def replace_object(self, client: ContainerClient, name: str, data: bytes,
                       expires_at: float | None, version: str) -> bool:
        try:
            self._upload(client, name, data, expires_at, overwrite=True, etag=version,
                         match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            if _code(exc) == "ContainerNotFound":
                raise
            return False
        return True

    def delete_object(self, client: ContainerClient, name: str, version: str | None) -> None:
        condition: dict[str, Any] = {} if version is None else {
            "etag": version, "match_condition": MatchConditions.IfNotModified}
        try:
            client.delete_blob(name, **condition)
        except ResourceModifiedError:
            pass  # rewritten since it was listed: no longer expired
        except ResourceNotFoundError as exc:
            if _code(exc) == "ContainerNotFound":
                raise

    def list_objects(self, client: ContainerClient, prefix: str) -> Iterable[ObjectListing]:
        return [ObjectListing(blob.name, str(blob.etag),
                              parse_deadline((blob.metadata or {}).get(METADATA)))
                for blob in client.list_blobs(name_starts_with=prefix or None,
                                              include=["metadata"])]

    def classify(self, exc: Exception, what: str) -> BaseException | None:
        if isinstance(exc, ResourceNotFoundError) and _code(exc) == "ContainerNotFound":
            return ContainerMissing()
        if isinstance(exc, ClientAuthenticationError) or (
                isinstance(exc, HttpResponseError) and exc.status_code == 403):
            return ConfigurationError(
                f"the {self.described} refused the credentials to {what} "
                f"({_code(exc) or 403}); check the AccountKey or SAS "
                f"token in the connection string, or the identity's role on the account")
        if isinstance(exc, ServiceRequestError):
            return Unreached(f"{type(exc).__name__}: {_first_line(exc)}")
        if isinstance(exc, ServiceResponseError):
            return Lost(f"{type(exc).__name__}: {_first_line(exc)}")
        if isinstance(exc, HttpResponseError):
            status = exc.status_code or 0
            if status in (429, 500, 502, 503, 504):
                return Throttled(f"{_code(exc) or status} from Azure Blob Storage")
            return KernelError(f"the {self.described} could not {what}: "
                               f"{_code(exc) or status} ({_first_line(exc)}); check the "
                               f"container's settings and permissions")
        return None


def _code(exc: BaseException) -> str:
    """The service's error code (``ContainerNotFound``, ``BlobNotFound``...), or ""."""
    return str(getattr(exc, "error_code", None) or "")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__


__all__ = ["AzureBlobStore", "connection_fields"]
