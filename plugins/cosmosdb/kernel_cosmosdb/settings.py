"""What a ``cosmosdbsql://`` URL and the store's settings say, checked before any connection:
the account's endpoint, its key, the database and container, and how to retry. Imports no
Azure library.

The URL is Celery's: ``cosmosdbsql://:{key}@{account}.documents.azure.com[:port]`` (the key
percent-encoded, since a Cosmos key holds ``/``, ``+`` and ``=``; written as the user part,
``{key}@``, it is accepted too). As in Celery, no port or port 443 means HTTPS and any other
port plain HTTP. Options (``result_backend_options`` or the URL's query) may say otherwise:

* ``scheme``: ``https`` or ``http``, whatever the port (an emulator on
  ``https://127.0.0.1:8081``: ``cosmosdbsql://:KEY@127.0.0.1:8081?scheme=https``);
* ``tls_verify``: ``false`` accepts any certificate (an emulator's self-signed one). On by
  default; meant for tests only, never for an account on the internet;
* ``endpoint_discovery``: ``false`` keeps the client on the URL's endpoint instead of the
  regional endpoints the account advertises (an emulator has one region, and may advertise
  an address that is not its own); on by default, as azure-cosmos has it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from kernel.plugin import ConfigurationError, OptionReader, Options, mask_url, url_query

#: the service's consistency levels (what azure-cosmos's ``consistency_level`` accepts).
CONSISTENCY_LEVELS = ("Strong", "BoundedStaleness", "Session", "ConsistentPrefix", "Eventual")

HTTPS_PORT = 443


@dataclass(frozen=True)
class CosmosSettings:
    """One store's account, place and retry budget. `key` never shows in its repr."""

    #: ``https://host:port`` (or ``http://``), what the client is given.
    endpoint: str
    key: str = field(repr=False)
    database: str
    container: str
    consistency_level: str
    #: how many times a throttled (429) or unavailable (503) request is sent again.
    max_retry_attempts: int
    #: the most seconds one call spends waiting on throttled or unavailable requests.
    max_retry_wait_time: float
    #: the most seconds one call spends on an unreachable account.
    connection_timeout: float
    verify_tls: bool
    endpoint_discovery: bool
    #: the URL with its key masked, for every message.
    shown: str

    @classmethod
    def parse(cls, url: str, options: Options | None = None) -> CosmosSettings:
        """The settings of `url` and `options`; `ConfigurationError` (a sentence naming the
        URL, key masked) for anything wrong."""
        shown = mask_url(url)
        bare, query = url_query(url)
        merged: dict[str, Any] = {**(options or {}), **query}
        reader = OptionReader(merged, "Cosmos DB result store")
        parts = urlsplit(bare)
        example = "write cosmosdbsql://:KEY@ACCOUNT.documents.azure.com (KEY percent-encoded)"
        if parts.scheme != "cosmosdbsql" or not parts.hostname:
            raise ConfigurationError(f"{shown!r} is not a Cosmos DB URL; {example}")
        key = unquote(parts.password or parts.username or "")
        if not key:
            raise ConfigurationError(f"{shown!r} has no account key; {example}")
        try:
            port = parts.port or HTTPS_PORT
        except ValueError:
            raise ConfigurationError(f"the port of {shown!r} is not a number; {example}") \
                from None
        scheme = reader.text("scheme", "https" if port == HTTPS_PORT else "http")
        if scheme not in ("https", "http"):
            raise ConfigurationError(f"Cosmos DB option 'scheme' of {shown!r} must be https or "
                                     f"http, not {scheme!r}")
        level = reader.text("cosmosdbsql_consistency_level", "Session")
        if level not in CONSISTENCY_LEVELS:
            raise ConfigurationError(
                f"cosmosdbsql_consistency_level {level!r} is not one of Cosmos DB's: "
                f"{', '.join(CONSISTENCY_LEVELS)}")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        return cls(
            endpoint=f"{scheme}://{host}:{port}", key=key,
            database=_name(reader, "cosmosdbsql_database_name", "celerydb"),
            container=_name(reader, "cosmosdbsql_collection_name", "celerycol"),
            consistency_level=level,
            max_retry_attempts=reader.integer("cosmosdbsql_max_retry_attempts", 9, minimum=0),
            max_retry_wait_time=reader.number("cosmosdbsql_max_retry_wait_time", 30,
                                              minimum=0),
            connection_timeout=reader.number("connection_timeout", 4.0, positive=True),
            verify_tls=reader.boolean("tls_verify", True),
            endpoint_discovery=reader.boolean("endpoint_discovery", True),
            shown=shown)


def _name(reader: OptionReader, setting: str, default: str) -> str:
    name = reader.text(setting, default)
    if not name or any(c in name for c in "/\\?#") or name != name.strip():
        raise ConfigurationError(f"{setting} {name!r} is not a Cosmos DB resource name: it must "
                                 f"be non-empty, without / \\ ? # or surrounding spaces")
    return name


__all__ = ["CONSISTENCY_LEVELS", "CosmosSettings"]
