"""The MongoDB result store: task results in Celery's ``celery_taskmeta``, saved groups in
``celery_groupmeta``, every other key (chord counters, revocations, unique claims) in kernel's
``kernel_kv``; through pymongo."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any

import bson
from bson.errors import InvalidDocument
from pymongo import ReplaceOne, ReturnDocument, UpdateOne, errors
from pymongo.collection import Collection

from kernel.interfaces.results import ResultStore
from kernel.plugin import (
    ConfigurationError,
    OptionReader,
    Options,
    RecordFields,
    ResultTooLarge,
    key_kind,
    mask_url,
)
from kernel_mongodb.connection import DEFAULT_POOL_SIZE, Connection, failure, settings
from kernel_mongodb.documents import EXPIRES_AT, Document, Documents, expired
from kernel_mongodb.plugin import CAPABILITIES

log = logging.getLogger("kernel.mongodb")

#: MongoDB's limit on one document, the same on every server.
MAX_DOCUMENT = 16 * 1024 * 1024
#: records at least this long are measured as BSON before they are sent (BSON arrays of
#: small numbers take several times their JSON text).
MEASURE_FROM = 1024 * 1024
#: how often `add` looks again when the key changed under it (deleted, expired, replaced).
ADD_ATTEMPTS = 3


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _kv_update(doc: Document) -> Document:
    """The update that makes a kernel key's document `doc`. An update, not a replacement:
    nx-27017 cannot replace a document holding bytes (it fails: "Object of type bytes is not
    JSON serializable"), and on MongoDB the two are the same."""
    if EXPIRES_AT in doc:
        return {"$set": {"value": doc["value"], EXPIRES_AT: doc[EXPIRES_AT]}}
    return {"$set": {"value": doc["value"]}, "$unset": {EXPIRES_AT: ""}}


class MongoResultStore(ResultStore):
    """``mongodb://user:password@host:27017/database`` (or ``mongodb+srv://``), Celery's URLs.

    Task records are kept in Celery's documents, decoded with the app's result serializer
    (``options["record_fields"]``), so a Celery worker's documents read as kernel records and
    kernel's as Celery's. Task and group documents expire ``result_expires`` after their
    ``date_done`` (Celery's rule; kernel's also carry ``expires_at``, which a TTL index
    watches); kernel's keys with the `expires` of the call that stored them. Reads MUST NOT
    return an expired document, whether or not the server deleted it yet; `cleanup` deletes
    them.

    Options: Celery's ``mongodb_backend_settings``, kernel's ``mongodb_kv_collection``; the
    client's pool keeps up to ``worker_concurrency`` connections (Celery's 10 when unset) and
    gives up on an unreachable server after ``connection_timeout`` seconds.
    """

    capabilities = CAPABILITIES

    def __init__(self, url: str, options: Options | None = None) -> None:
        options = options or {}
        reader = OptionReader(options, "MongoDB result store")
        self.url = url
        fields = options.get("record_fields")
        if not isinstance(fields, RecordFields):
            raise ConfigurationError("the MongoDB result store needs options['record_fields'] "
                                     "(the App gives it): create it through App(results=...)")
        self.docs = Documents(fields)
        self.expires = reader.duration("result_expires", None)
        backend_settings = reader.get("mongodb_backend_settings", None) or {}
        if not isinstance(backend_settings, Mapping):
            raise ConfigurationError(f"mongodb_backend_settings must be a dict, not "
                                     f"{type(backend_settings).__name__}")
        timeout = reader.number("connection_timeout", 10.0, positive=True)
        self.settings = settings(
            url, backend_settings, reader.text("mongodb_kv_collection", "kernel_kv"), timeout,
            reader.integer("worker_concurrency", 0, minimum=0) or DEFAULT_POOL_SIZE)
        self._db = Connection(url, self.settings, timeout)
        self._indexed: set[str] = set()
        self._index_lock = (0, threading.Lock())

    def __repr__(self) -> str:
        return f"<MongoResultStore {mask_url(self.url)}>"

    # ------------------------------------------------------------------ collections

    def _collection(self, kind: str) -> Collection[Document]:
        names = {"task": self.settings.task_collection, "group": self.settings.group_collection,
                 "kv": self.settings.kv_collection}
        return self._db.collection(names[kind])

    def _written(self, kind: str) -> Collection[Document]:
        """The collection of `kind`, its indexes made (once per process) before the first
        write: Celery's on ``date_done`` (same key and options, so either side may make it)
        and the TTL index on ``expires_at``."""
        collection = self._collection(kind)
        if kind in self._indexed:
            return collection
        if self._index_lock[0] != os.getpid():  # one a parent's thread held stays held
            self._index_lock = (os.getpid(), threading.Lock())
        with self._index_lock[1]:
            if kind not in self._indexed:
                def make() -> None:
                    if kind != "kv":
                        collection.create_index("date_done", background=True)
                    collection.create_index(EXPIRES_AT, expireAfterSeconds=0)

                try:
                    self._db.run("create the indexes", make)
                except ConfigurationError as exc:  # refused: results still store and expire
                    log.warning("%s; expired documents then wait for `kernel results "
                                "cleanup`", exc)
                self._indexed.add(kind)
        return collection

    def _cutoff(self, now: datetime) -> datetime | None:
        """Task and group documents done before this are expired (None: never)."""
        return None if self.expires is None else now - timedelta(seconds=self.expires)

    # ------------------------------------------------------------------ writes

    def _documents(self, items: Sequence[tuple[str, bytes]], expires: float | None
                   ) -> tuple[dict[str, list[Document]], list[str]]:
        """The documents of `items` by collection kind, and the keys (with sizes) of those
        over MongoDB's limit, left out."""
        now = _now()
        by_kind: dict[str, list[Document]] = {"task": [], "group": [], "kv": []}
        oversized: list[str] = []
        for key, value in items:
            kind = key_kind(key)
            if kind is None:
                doc: Document = {"_id": key, "value": value}
                if expires is not None:
                    doc[EXPIRES_AT] = now + timedelta(seconds=expires)
            elif kind[0] == "task":
                doc = self.docs.task(kind[1], value, now, expires)
            else:
                doc = self.docs.group(kind[1], value, now, expires)
            size = 0 if len(value) < MEASURE_FROM else self._size(doc)
            if size > MAX_DOCUMENT:
                oversized.append(f"{key!r} ({size} bytes)")
            else:
                by_kind["kv" if kind is None else kind[0]].append(doc)
        return by_kind, oversized

    def _size(self, doc: Document) -> int:
        try:
            return len(bson.encode(doc))
        except (InvalidDocument, OverflowError) as exc:
            raise failure(exc, self.url, "store results") from None

    def _too_large(self, oversized: list[str]) -> None:
        if oversized:
            raise ResultTooLarge(
                f"the record {oversized[0]} is larger than MongoDB at {mask_url(self.url)} "
                f"keeps in one document ({MAX_DOCUMENT} bytes); return less from the task, or "
                f"keep large values elsewhere and return a reference")

    def set(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        by_kind, oversized = self._documents(items, expires)
        for kind, docs in by_kind.items():
            if docs:
                collection = self._written(kind)
                self._db.run("store results", partial(self._upsert, collection, docs,
                                                      kind == "kv"))
        self._too_large(oversized)

    @staticmethod
    def _upsert(collection: Collection[Document], docs: list[Document], kv: bool) -> None:
        """One unordered bulk of upserts; those that met a concurrent upsert of the same id
        (DuplicateKeyError, which a server may give instead of retrying) are sent again.
        Kernel's keys are updated in place (`_kv_update`), Celery's documents replaced."""
        pending = docs
        for _ in range(ADD_ATTEMPTS):
            try:
                collection.bulk_write([
                    UpdateOne({"_id": d["_id"]}, _kv_update(d), upsert=True) if kv else
                    ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in pending],
                    ordered=False)
                return
            except errors.BulkWriteError as exc:
                failed = exc.details.get("writeErrors", [])
                if any(e.get("code") != 11000 for e in failed):
                    raise
                pending = [pending[e["index"]] for e in failed]
        raise errors.DuplicateKeyError("concurrent writers kept replacing the same ids")

    def add(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        """One unordered insert; a key already there is left as it is unless its document
        expired, which is then replaced only if it is still the very one that expired."""
        by_kind, oversized = self._documents(items, expires)
        for kind, docs in by_kind.items():
            if not docs:
                continue
            collection = self._written(kind)
            taken = self._db.run("store results", partial(self._insert, collection, docs))
            for doc in taken:
                self._db.run("store results", partial(self._add_over_expired, collection, doc,
                                                      kind != "kv"))
        self._too_large(oversized)

    @staticmethod
    def _insert(collection: Collection[Document], docs: list[Document]) -> list[Document]:
        """Insert `docs`; return those whose id was taken. Sent again after a lost reply, an
        insert that landed then counts as taken, which it is."""
        try:
            collection.insert_many(docs, ordered=False)
        except errors.BulkWriteError as exc:
            failed = exc.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in failed):
                raise
            return [docs[e["index"]] for e in failed]
        return []

    def _add_over_expired(self, collection: Collection[Document], doc: Document,
                          by_age: bool) -> None:
        for _ in range(ADD_ATTEMPTS):
            found = collection.find_one({"_id": doc["_id"]})
            if found is None:  # deleted meanwhile (the TTL monitor, a forget)
                try:
                    collection.insert_one(doc)
                    return
                except errors.DuplicateKeyError:
                    continue
            now = _now()
            if not expired(found, now, self._cutoff(now) if by_age else None):
                return
            same: Document = {"_id": doc["_id"]}
            for name in (EXPIRES_AT, "date_done"):
                same[name] = found[name] if name in found else {"$exists": False}
            if by_age:
                replaced = collection.replace_one(same, doc)
            else:
                replaced = collection.update_one(same, _kv_update(doc))
            if replaced.matched_count:
                return

    # ------------------------------------------------------------------ reads

    def get(self, key: str) -> bytes | None:
        kind = key_kind(key)
        ident = key if kind is None else kind[1]
        collection = self._collection("kv" if kind is None else kind[0])
        doc = self._db.run("read a result", lambda: collection.find_one({"_id": ident}))
        now = _now()
        if doc is None or expired(doc, now, None if kind is None else self._cutoff(now)):
            return None
        if kind is None:
            return self.docs.value(doc)
        if kind[0] == "task":
            return self.docs.task_record(doc)
        return self.docs.group_record(doc)

    def delete(self, keys: Sequence[str]) -> None:
        by_kind: dict[str, list[str]] = {"task": [], "group": [], "kv": []}
        for key in keys:
            kind = key_kind(key)
            if kind is None:
                by_kind["kv"].append(key)
            else:
                by_kind[kind[0]].append(kind[1])
        for name, ids in by_kind.items():
            if ids:
                collection = self._collection(name)
                self._db.run("forget results",
                             partial(collection.delete_many, {"_id": {"$in": ids}}))

    # ------------------------------------------------------------------ counters

    def incr(self, key: str, amount: int = 1, expires: float | None = None) -> int:
        """``$inc`` in one ``findAndModify`` (upserted, the new document returned). A counter
        that expired but is still there (the TTL monitor runs once a minute) is first deleted,
        only if it is still that very document, so it counts from 0 again."""
        if key_kind(key) is not None:
            raise ConfigurationError(f"{key!r} is a result key, not a counter; counters live "
                                     f"under kernel's own keys")
        collection = self._written("kv")
        found = self._db.run("count", lambda: collection.find_one({"_id": key}))
        now = _now()
        update: dict[str, Any] = {"$inc": {"value": int(amount)}}
        until = None if expires is None else now + timedelta(seconds=expires)
        if found is not None and expired(found, now, None):
            self._db.run("count", partial(collection.delete_one,
                                          {"_id": key, EXPIRES_AT: found[EXPIRES_AT]}))
            found = None
        if until is not None:
            # nx-27017 keeps a date given to $set as its text (and findAndModify ignores
            # $setOnInsert there): the reads here take both.
            update["$set"] = {EXPIRES_AT: until}
        # Not tried again: a reply lost with its connection may have counted already.
        doc = self._db.run("count", lambda: collection.find_one_and_update(
            {"_id": key}, update, upsert=True, return_document=ReturnDocument.AFTER),
            retry=False)
        value = doc.get("value") if doc else None
        if not isinstance(value, int):
            raise ConfigurationError(f"{key!r} holds no counter; something else stored it")
        return value

    # ------------------------------------------------------------------ upkeep

    def cleanup(self) -> dict[str, int]:
        """Delete what has expired: task and group documents done more than
        ``result_expires`` ago (what Celery's ``celery.backend_cleanup`` deletes) or past their
        ``expires_at``, and kernel's keys past theirs. Returns how many, per collection kind."""
        now = _now()
        cutoff = self._cutoff(now)
        deleted: dict[str, int] = {}
        for kind in ("task", "group", "kv"):
            collection = self._collection(kind)
            rules: list[Document] = [{EXPIRES_AT: {"$lte": now}}]
            if cutoff is not None and kind != "kv":
                rules.append({"date_done": {"$lt": cutoff}})
            deleted[kind] = 0
            for rule in rules:  # one rule a call: nx-27017 ignores conditions beside an $or
                result = self._db.run("delete expired results",
                                      partial(collection.delete_many, rule))
                deleted[kind] += result.deleted_count
        return deleted

    def close(self) -> None:
        self._db.close()


__all__ = ["MongoResultStore", "failure"]
