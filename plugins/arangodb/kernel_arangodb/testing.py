"""A fake ArangoDB server for tests, where no ArangoDB runs: the parts of ArangoDB's HTTP API
python-arango calls for the store, answered by a thread of the test process
(`kernel.testing.http_fake.FakeHTTP`) on a free loopback port::

    from kernel_arangodb.testing import ArangoFake

    with ArangoFake(databases=("celery",)) as arango:
        arango.url("celery", "results")      # arangodb://root:@127.0.0.1:PORT/celery/results
        arango.documents("celery", "results")

What it answers, under ``/_db/<database>/`` and as ArangoDB 3.x documents it:

* ``POST /_api/collection`` (409, error 1207, for a name taken);
* ``POST /_api/index?collection=C`` with ``type: ttl`` only (201 new, 200 the same again);
* ``GET /_api/document/C/K`` (the document, ``Etag`` its ``_rev``; 404 with error 1202);
* ``POST /_api/document/C`` (201; 409 with error 1210 where the key is taken, unless
  ``overwrite`` is true, which replaces; booleans as ArangoDB reads them: true, 1, yes, on);
* ``PUT /_api/document/C/K``: a replace; with ``ignoreRevs`` false the body's ``_rev``, and an
  ``If-Match`` header, are preconditions (412, error 1200, where the document changed), checked
  and applied in one step, as ArangoDB applies one document operation;
* ``DELETE /_api/document/C/K`` (404 with error 1202 where there is none).

For pyArango, the client Celery's ArangoDB backend runs on, also what it reads when it
connects (``GET /_api/user/<user>/database``, and per database ``GET /_api/collection``, and
``/_api/gharial`` and ``/_api/foxx``, which answer no graphs and no services), and
``POST /_api/cursor`` for exactly the AQL statements Celery's backend sends (`CELERYS_AQL`:
its get, mget, set as an ``UPSERT`` whose update merges, and delete), run as ArangoDB runs
them; any other statement is refused (501), as is a cursor with more than one batch.

A missing collection is 404 with error 1203, a missing database 404 with error 1228; with
`credentials`, basic auth (401, error 11). Every document gets a fresh ``_rev``. A TTL index
removes documents whose indexed field is a number at most ``now - expireAfter`` in a sweep every
`ttl_frequency` seconds (ArangoDB's ``--ttl.frequency``, 30 s by default there). Nothing else
of ArangoDB is here: no other AQL, no other index types, no transactions, no cluster.
"""

from __future__ import annotations

import base64
import itertools
import threading
from collections.abc import Callable
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from typing_extensions import Self

from kernel.testing.http_fake import FakeHTTP, Reply, Request

__all__ = ["ArangoFake"]

Doc = dict[str, Any]

#: The AQL statements Celery's ArangoDB backend sends (celery/backends/arangodb.py), with
#: whitespace collapsed, and what each does; the fake runs these and refuses any other.
CELERYS_AQL = {
    "get": "RETURN DOCUMENT(@@collection, @key).task",
    "mget": "FOR k IN @keys RETURN DOCUMENT(@@collection, k).task",
    "set": "UPSERT {_key: @key} INSERT {_key: @key, task: @value} UPDATE {task: @value} "
           "IN @@collection",
    "delete": "REMOVE {_key: @key} IN @@collection OPTIONS { ignoreErrors: true }",
}


def _error(status: int, number: int, message: str) -> Reply:
    return Reply.json(status, {"error": True, "code": status, "errorNum": number,
                               "errorMessage": message})


def _flag(query: dict[str, str], name: str, default: bool) -> bool:
    """A boolean query parameter as ArangoDB reads one (``true``, ``1``, ``yes``, ``on``)."""
    value = query.get(name)
    return default if value is None else value.lower() in ("true", "1", "yes", "on", "y")


def _field(doc: Doc | None, name: str) -> Any:
    """AQL's ``DOCUMENT(...).name``: null for a missing document or attribute."""
    return None if doc is None else doc.get(name)


class ArangoFake:
    """A fake ArangoDB on 127.0.0.1 (see the module's docstring); `databases` exist from the
    start, `credentials` (user, password) default to ArangoDB's ``root`` without a password,
    `log` names a file each request is written to. Stopped and started again, it keeps its
    documents, as a server keeps its disk."""

    def __init__(self, *, databases: tuple[str, ...] = ("celery",),
                 credentials: tuple[str, str] = ("root", ""), ttl_frequency: float = 30.0,
                 port: int | None = None, log: Path | None = None) -> None:
        self.credentials = credentials
        self.ttl_frequency = ttl_frequency
        self._lock = threading.Lock()
        self._collections: dict[str, dict[str, dict[str, Doc]]] = {d: {} for d in databases}
        self._ttl: dict[tuple[str, str], tuple[str, float]] = {}
        self._revisions = itertools.count(1)
        self._stopped = threading.Event()
        self._sweeper: threading.Thread | None = None
        self.http = FakeHTTP(self.answer, "the fake ArangoDB", port=port, log=log)
        self.name, self.log = self.http.name, self.http.log

    @property
    def port(self) -> int:
        return self.http.port

    @property
    def endpoint(self) -> str:
        return self.http.base_url

    def url(self, database: str, collection: str, *, password: str | None = None) -> str:
        user, secret = self.credentials
        secret = secret if password is None else password
        return f"arangodb://{user}:{quote(secret, safe='')}@127.0.0.1:{self.port}/" \
            f"{database}/{collection}"

    def documents(self, database: str, collection: str) -> dict[str, Doc]:
        """The collection's documents now (copies); KeyError where it does not exist."""
        with self._lock:
            return {k: dict(v) for k, v in self._collections[database][collection].items()}

    def ttl_index(self, database: str, collection: str) -> tuple[str, float] | None:
        """(field, expireAfter) of the collection's TTL index, or None."""
        with self._lock:
            return self._ttl.get((database, collection))

    def start(self) -> Self:
        self.http.start()
        if self._sweeper is None:
            self._stopped.clear()
            self._sweeper = threading.Thread(target=self._sweep, name="fake ArangoDB TTL",
                                             daemon=True)
            self._sweeper.start()
        return self

    def stop(self) -> None:
        self.http.stop()
        self._stopped.set()
        if self._sweeper is not None:
            self._sweeper.join(5)
            self._sweeper = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _sweep(self) -> None:
        while not self._stopped.wait(self.ttl_frequency):
            now = time.time()
            with self._lock:
                for (database, name), (field, after) in self._ttl.items():
                    docs = self._collections.get(database, {}).get(name, {})
                    for key in [k for k, d in docs.items()
                                if isinstance(d.get(field), (int, float))
                                and d[field] + after <= now]:
                        del docs[key]

    # ------------------------------------------------------------------ the API

    def answer(self, request: Request) -> Reply:
        header = request.headers.get("authorization", "")
        given = base64.b64decode(header[6:]).decode().partition(":") \
            if header.startswith("Basic ") else ("", "", "")
        if (given[0], given[2]) != self.credentials:
            return _error(401, 11, "not authorized to execute this request")
        parts = request.segments
        if parts[:2] == ["_api", "user"] and parts[3:] == ["database"] \
                and request.method == "GET":
            with self._lock:
                return Reply.json(200, {"error": False, "code": 200,
                                        "result": {name: "rw" for name in self._collections}})
        if len(parts) < 3 or parts[0] != "_db" or parts[2] != "_api":
            return _error(404, 404, "unknown path")
        database, rest = parts[1], parts[3:]
        with self._lock:
            collections = self._collections.get(database)
            if collections is None:
                return _error(404, 1228, "database not found")
            if request.method == "GET" and rest in (["collection"], ["gharial"], ["foxx"]):
                return self._listing(rest[0], collections)
            if rest == ["cursor"] and request.method == "POST":
                return self._cursor(collections, request.json())
            if rest == ["collection"] and request.method == "POST":
                return self._create_collection(collections, request.json()["name"])
            if rest == ["index"] and request.method == "POST":
                return self._create_index(database, collections, request)
            if rest and rest[0] == "document" and len(rest) in (2, 3):
                documents = collections.get(rest[1])
                if documents is None:
                    return _error(404, 1203, "collection or view not found")
                return self._document(rest[1], documents, rest[2] if len(rest) == 3 else None,
                                      request)
        return _error(501, 9, f"the fake ArangoDB does not answer {request.method} "
                              f"{request.path}")

    def _listing(self, what: str, collections: dict[str, dict[str, Doc]]) -> Reply:
        if what == "foxx":
            return Reply.json(200, [])  # no services
        if what == "gharial":
            return Reply.json(200, {"error": False, "code": 200, "graphs": []})
        return Reply.json(200, {"error": False, "code": 200, "result": [
            {"id": name, "name": name, "status": 3, "type": 2, "isSystem": False,
             "globallyUniqueId": name} for name in collections]})

    def _cursor(self, collections: dict[str, dict[str, Doc]], body: Doc) -> Reply:
        statement = " ".join(str(body.get("query", "")).split())
        found = [name for name, text in CELERYS_AQL.items() if text == statement]
        if not found:
            return _error(501, 9, "the fake ArangoDB runs only the AQL statements Celery's "
                                  "backend sends")
        values: Doc = body.get("bindVars") or {}
        name = str(values.get("@collection"))
        docs = collections.get(name)
        if docs is None:
            return _error(404, 1203, "collection or view not found")
        run: dict[str, Callable[[], list[Any]]] = {
            "get": lambda: [_field(docs.get(values["key"]), "task")],
            "mget": lambda: [_field(docs.get(k), "task") for k in values["keys"]],
            "set": lambda: self._upsert(name, docs, values["key"], values["value"]),
            "delete": lambda: self._remove(docs, values["key"]),
        }
        return Reply.json(201, {"error": False, "code": 201, "result": run[found[0]](),
                                "hasMore": False, "cached": False, "extra": {}})

    def _upsert(self, collection: str, docs: dict[str, Doc], key: str,
                value: Any) -> list[Any]:
        merged = {**docs.get(key, {}), "_key": key, "task": value}  # UPDATE merges
        self._stored(collection, docs, key, merged, {"silent": "true"})
        return []

    @staticmethod
    def _remove(docs: dict[str, Doc], key: str) -> list[Any]:
        docs.pop(key, None)  # ignoreErrors: a missing document is no error
        return []

    def _create_collection(self, collections: dict[str, dict[str, Doc]], name: str) -> Reply:
        if name in collections:
            return _error(409, 1207, "duplicate name")
        collections[name] = {}
        return Reply.json(200, {"error": False, "code": 200, "id": str(next(self._revisions)),
                                "name": name, "type": 2, "status": 3})

    def _create_index(self, database: str, collections: dict[str, dict[str, Doc]],
                      request: Request) -> Reply:
        name = request.query.get("collection", "")
        if name not in collections:
            return _error(404, 1203, "collection or view not found")
        spec = request.json()
        if spec.get("type") != "ttl" or len(spec.get("fields", [])) != 1:
            return _error(501, 9, "the fake ArangoDB makes TTL indexes only")
        field, after = spec["fields"][0], float(spec.get("expireAfter", 0))
        existing = self._ttl.get((database, name))
        if existing is not None and existing != (field, after):
            return _error(400, 10, "there can be only one TTL index per collection")
        self._ttl[(database, name)] = (field, after)
        return Reply.json(200 if existing else 201, {
            "error": False, "code": 200 if existing else 201, "id": f"{name}/ttl",
            "type": "ttl", "fields": [field], "expireAfter": after,
            "name": spec.get("name", "ttl"), "isNewlyCreated": existing is None})

    def _document(self, collection: str, documents: dict[str, Doc], key: str | None,
                  request: Request) -> Reply:
        method, query = request.method, request.query
        if method == "GET" and key is not None:
            found = documents.get(key)
            if found is None:
                return _error(404, 1202, "document not found")
            return Reply.json(200, found, {"Etag": f'"{found["_rev"]}"'})
        if method == "POST" and key is None:
            body: Doc = request.json()
            key = str(body.get("_key") or next(self._revisions))
            if key in documents and not _flag(query, "overwrite", False):
                return _error(409, 1210, "unique constraint violated - in index primary of "
                                         "type primary over '_key'")
            return self._stored(collection, documents, key, body, query)
        if method == "PUT" and key is not None:
            current = documents.get(key)
            if current is None:
                return _error(404, 1202, "document not found")
            body = request.json()
            expected = [request.headers.get("if-match", "").strip('"') or None]
            if not _flag(query, "ignoreRevs", True):
                expected.append(body.get("_rev"))
            if any(rev is not None and rev != current["_rev"] for rev in expected):
                return Reply.json(412, {"error": True, "code": 412, "errorNum": 1200,
                                        "errorMessage": "conflict, _rev values do not match",
                                        "_id": current["_id"], "_key": key,
                                        "_rev": current["_rev"]})
            return self._stored(collection, documents, key, body, query)
        if method == "DELETE" and key is not None:
            gone = documents.pop(key, None)
            if gone is None:
                return _error(404, 1202, "document not found")
            return Reply.json(200, {"_id": gone["_id"], "_key": key, "_rev": gone["_rev"]})
        return _error(405, 405, "method not supported")

    def _stored(self, collection: str, documents: dict[str, Doc], key: str, body: Doc,
                query: dict[str, str]) -> Reply:
        rev = f"_r{next(self._revisions):08d}-"
        doc = {**{k: v for k, v in body.items() if not k.startswith("_")},
               "_key": key, "_id": f"{collection}/{key}", "_rev": rev}
        documents[key] = doc
        meta = {} if _flag(query, "silent", False) else {"_id": doc["_id"], "_key": key,
                                                          "_rev": rev}
        return Reply.json(201, meta, {"Etag": f'"{rev}"'})
