"""The two clients the store speaks through, behind one small surface: elasticsearch-py (8 or
9) for ``elasticsearch://`` and opensearch-py for ``opensearch://``. Their calls differ in
small ways (``document=`` or ``body=``, ``request_timeout`` or ``timeout``) and their errors
in name only; each `Flavour` hides those, and the store holds the rest.

Imported by the store on first use, never by the entry point.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Errors:
    """A client's exception classes, by what the store does with them."""

    #: the document (or the whole index) is not there.
    not_found: tuple[type[BaseException], ...]
    #: ``op_type=create`` found a document, or ``if_seq_no`` a newer one.
    conflict: tuple[type[BaseException], ...]
    #: 401 or 403.
    refused: tuple[type[BaseException], ...]
    #: nothing came back: the connection failed or timed out.
    unreached: tuple[type[BaseException], ...]
    #: every other error the server answered with (has a status).
    answered: tuple[type[BaseException], ...]


def status_of(exc: BaseException) -> object:
    """The HTTP status an error of either client carries."""
    meta = getattr(exc, "meta", None)
    return getattr(meta, "status", None) or getattr(exc, "status_code", None)


class Flavour(ABC):
    """What differs between the two services' clients."""

    #: the service's name, for sentences.
    service: str
    errors: Errors

    @abstractmethod
    def connect(self, url: str, auth: tuple[str, str] | None, timeout: float,
                max_retries: int, retry_on_timeout: bool) -> Any:
        """A client for the server at `url` (``http(s)://host:port``)."""

    @abstractmethod
    def write(self, client: Any, index: str, doc_id: str, document: dict[str, Any], *,
              create: bool = False, seq: tuple[int, int] | None = None) -> dict[str, Any]:
        """Index `document` under `doc_id`: only where none is (`create`), or only over the
        version `seq` (``(_seq_no, _primary_term)``) names; a conflict raises."""

    @abstractmethod
    def delete_matching(self, client: Any, index: str, query: dict[str, Any],
                        timeout: float) -> dict[str, Any]:
        """Delete by query, skipping documents changed meanwhile (``conflicts=proceed``)."""

    def get(self, client: Any, index: str, doc_id: str) -> dict[str, Any]:
        found: Any = client.get(index=index, id=doc_id)
        return dict(found)

    def delete(self, client: Any, index: str, doc_id: str) -> None:
        client.delete(index=index, id=doc_id)

    def refresh(self, client: Any, index: str) -> None:
        client.indices.refresh(index=index)


class ElasticsearchFlavour(Flavour):
    service = "Elasticsearch"

    def __init__(self) -> None:
        import elastic_transport
        import elasticsearch

        self.errors = Errors(
            not_found=(elasticsearch.NotFoundError,),
            conflict=(elasticsearch.ConflictError,),
            refused=(elasticsearch.AuthenticationException,
                     elasticsearch.AuthorizationException),
            unreached=(elastic_transport.ConnectionError, elastic_transport.ConnectionTimeout),
            answered=(elasticsearch.ApiError, elasticsearch.UnsupportedProductError))
        self._module = elasticsearch

    def connect(self, url: str, auth: tuple[str, str] | None, timeout: float,
                max_retries: int, retry_on_timeout: bool) -> Any:
        return self._module.Elasticsearch(
            url, basic_auth=auth, request_timeout=timeout, max_retries=max_retries,
            retry_on_timeout=retry_on_timeout)

    def write(self, client: Any, index: str, doc_id: str, document: dict[str, Any], *,
              create: bool = False, seq: tuple[int, int] | None = None) -> dict[str, Any]:
        conditions: dict[str, Any] = {"op_type": "create"} if create else {}
        if seq is not None:
            conditions = {"if_seq_no": seq[0], "if_primary_term": seq[1]}
        return dict(client.index(index=index, id=doc_id, document=document, **conditions))

    def delete_matching(self, client: Any, index: str, query: dict[str, Any],
                        timeout: float) -> dict[str, Any]:
        return dict(client.options(request_timeout=timeout).delete_by_query(
            index=index, query=query, conflicts="proceed", refresh=True))


class OpenSearchFlavour(Flavour):
    service = "OpenSearch"

    def __init__(self) -> None:
        import opensearchpy

        self.errors = Errors(
            not_found=(opensearchpy.NotFoundError,),
            conflict=(opensearchpy.ConflictError,),
            refused=(opensearchpy.AuthenticationException, opensearchpy.AuthorizationException),
            unreached=(opensearchpy.ConnectionError,),  # ConnectionTimeout is one
            answered=(opensearchpy.TransportError,))
        self._module = opensearchpy

    def connect(self, url: str, auth: tuple[str, str] | None, timeout: float,
                max_retries: int, retry_on_timeout: bool) -> Any:
        return self._module.OpenSearch(
            [url], http_auth=auth, timeout=timeout, max_retries=max_retries,
            retry_on_timeout=retry_on_timeout)

    def write(self, client: Any, index: str, doc_id: str, document: dict[str, Any], *,
              create: bool = False, seq: tuple[int, int] | None = None) -> dict[str, Any]:
        conditions: dict[str, Any] = {"op_type": "create"} if create else {}
        if seq is not None:
            conditions = {"if_seq_no": seq[0], "if_primary_term": seq[1]}
        return dict(client.index(index=index, id=doc_id, body=document, params=conditions))

    def delete_matching(self, client: Any, index: str, query: dict[str, Any],
                        timeout: float) -> dict[str, Any]:
        return dict(client.delete_by_query(
            index=index, body={"query": query},
            params={"conflicts": "proceed", "refresh": "true", "request_timeout": timeout}))


__all__ = ["ElasticsearchFlavour", "Errors", "Flavour", "OpenSearchFlavour", "status_of"]
