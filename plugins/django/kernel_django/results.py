"""The django-db result store: task results in django-celery-results' ``TaskResult`` rows,
saved groups in its ``GroupResult`` rows, chords in its ``ChordCounter`` rows (as Celery's
django-db backend keeps them, so its admin lists kernel's results and Celery and kernel workers
share them), and kernel's other keys in ``kernel_kv``; through Django's ORM and connections."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone as dt_timezone
from typing import Any, TypeVar

from django.conf import settings
from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connections,
    router,
    transaction,
)
from django.db.models import F, Q
from django.utils import timezone

from kernel.interfaces.results import ResultStore
from kernel.plugin import (
    GROUP_KEY_PREFIX,
    ConfigurationError,
    ConnectionFailed,
    DecodeError,
    GroupFields,
    OptionReader,
    Options,
    RecordFields,
    TaskFields,
    key_kind,
    retry_within,
)
from kernel_django.plugin import CAPABILITIES
from kernel_django.setup import check_tables, describe, masked, require_results_app

T = TypeVar("T")
log = logging.getLogger("kernel.django")

#: the columns a task row's write sets (date_created is kept, date_started set on STARTED).
TASK_COLUMNS = ["status", "content_type", "content_encoding", "result", "date_done",
                "traceback", "meta", "task_name", "task_args", "task_kwargs", "worker",
                "periodic_task_name"]
GROUP_COLUMNS = ["content_type", "content_encoding", "result", "date_done"]
#: what a task's ``meta`` column holds besides ``children`` and the extra record keys.
META_FIELDS = ("retries", "queue")


#: a transaction rolled back whole to break a deadlock or a serialization conflict: the
#: SQLSTATEs (PostgreSQL's 40P01 and 40001; MySQL/MariaDB report 40001 for their error 1213).
ROLLED_BACK_STATES = ("40001", "40P01")


def deadlock_victim(exc: BaseException) -> bool:
    """Whether the database rolled back the transaction of `exc` to break a deadlock."""
    cause = exc.__cause__
    code = cause.args[0] if cause is not None and cause.args else None
    return getattr(cause, "sqlstate", None) in ROLLED_BACK_STATES or code == 1213


class RolledBack(Exception):  # noqa: N818 - a state the store retries, never raised to callers
    """A transaction the database rolled back whole (see `deadlock_victim`): safe to run
    again, whether or not the work is."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class DjangoResultStore(ResultStore):
    """``django-db`` (Celery's URL: the database Django's router picks for
    django-celery-results' models), or ``django-db://ALIAS`` for a database of DATABASES.

    Task records are kept in django-celery-results' columns, encoded with the app's result
    serializer as Celery's django-db backend encodes them (``content_type`` and
    ``content_encoding`` say how; a binary serializer's bytes in base64). Task and group rows
    expire ``result_expires`` after their ``date_done``: reads ignore them and `cleanup`
    deletes them; other keys expire with the `expires` of the call that stored them.

    Needs Django configured, ``django_celery_results`` in INSTALLED_APPS and its migrations
    applied; ``kernel_kv`` is created where missing.
    """

    capabilities = CAPABILITIES

    def __init__(self, url: str, options: Options | None = None) -> None:
        options = options or {}
        reader = OptionReader(options, "django-db result store")
        fields = options.get("record_fields")
        if not isinstance(fields, RecordFields):
            raise ConfigurationError("the django-db result store needs options['record_fields'] "
                                     "(the App gives it): create it through App(results=...)")
        self.url = url
        self.fields = fields
        self.expires = reader.duration("result_expires", None)
        self.timeout = reader.number("connection_timeout", 10.0, positive=True)
        require_results_app()
        # Django's models can only be imported once its apps are loaded.
        from django_celery_results.models import ChordCounter, GroupResult, TaskResult

        from kernel_django import kv

        self._tasks, self._groups, self._chords = TaskResult, GroupResult, ChordCounter
        self._kv = kv.KernelKV
        alias = url.partition("://")[2].strip("/")
        if alias and alias not in settings.DATABASES:
            raise ConfigurationError(f"{url} names database {alias!r}, which DATABASES does not "
                                     f"define (it has {', '.join(settings.DATABASES)})")
        self.alias: str = alias or router.db_for_write(TaskResult) or "default"
        check_tables(self.alias, [m._meta.db_table for m in (TaskResult, GroupResult,
                                                               ChordCounter)])
        kv.create_table(self.alias)

    def __repr__(self) -> str:
        return f"<DjangoResultStore {describe(self.alias)}>"

    # ------------------------------------------------------------------ plumbing

    def _run(self, what: str, work: Callable[[], T], retry: bool = True) -> T:
        """`work()`, retried within ``connection_timeout`` while the database cannot be
        reached (if `retry`: only what is safe to do twice); errors as one sentence. A
        transaction of the store's own (not inside the caller's) that the database chose as a
        deadlock's victim is tried again whatever `retry` says: it was rolled back, so nothing
        of it was done (InnoDB picks one when counters start the same missing row at once)."""
        alias = self.alias

        def attempt() -> T:
            try:
                return work()
            except (OperationalError, InterfaceError) as exc:
                conn = connections[alias]
                if conn.in_atomic_block:
                    raise  # the caller's transaction: not ours to run again
                if deadlock_victim(exc):
                    raise RolledBack(exc) from exc
                conn.close()  # a broken connection: the next attempt opens another
                raise

        def failed(exc: BaseException) -> ConnectionFailed:
            cause = exc.cause if isinstance(exc, RolledBack) else exc
            return ConnectionFailed(f"the django-db result store cannot {what} in "
                                    f"{describe(alias)}: {masked(alias, cause)}")

        retry_on: tuple[type[BaseException], ...] = (
            (OperationalError, InterfaceError, RolledBack) if retry else (RolledBack,))
        try:
            return retry_within(self.timeout, attempt, retry_on, failed)
        except (OperationalError, InterfaceError) as exc:
            raise failed(exc) from None
        except DatabaseError as exc:
            raise ConfigurationError(
                f"the django-db result store cannot {what} in {describe(alias)}: "
                f"{masked(alias, exc)}; check django-celery-results' migrations are applied "
                f"(python manage.py migrate django_celery_results)") from None

    def _cutoff(self) -> datetime | None:
        """Task and group rows done before this are expired (None: never)."""
        if self.expires is None:
            return None
        now: datetime = timezone.now()
        return now - timedelta(seconds=self.expires)

    def _text(self, value: Any) -> str:
        """A value as django-celery-results' text columns hold it."""
        data = self.fields.dumps(value)
        if self.fields.serializer.content_encoding == "binary":
            return base64.b64encode(data).decode("ascii")
        return data.decode(self.fields.serializer.content_encoding)

    def _value(self, text: str | None, encoding: str, what: str) -> Any:
        if text is None or text == "":
            return None
        try:
            data = base64.b64decode(text) if encoding == "binary" else text.encode("utf-8")
        except (binascii.Error, ValueError):
            raise DecodeError(f"{what} is not the base64 its content_encoding 'binary' says; "
                              f"check what wrote the row") from None
        return self.fields.loads(data, what)

    @staticmethod
    def _aware(moment: datetime | None) -> datetime | None:
        if moment is None:
            return None
        if timezone.is_naive(moment):  # USE_TZ = False: the rows hold TIME_ZONE's time
            moment = timezone.make_aware(moment, timezone.get_default_timezone())
        return moment.astimezone(dt_timezone.utc)

    # ------------------------------------------------------------------ rows

    def _task_values(self, data: bytes) -> dict[str, Any]:
        task = self.fields.task(data)
        extra = dict(task.extra)
        meta = {**extra, "children": list(task.children or [])}
        meta.update({k: getattr(task, k) for k in META_FIELDS if getattr(task, k) is not None})
        serializer = self.fields.serializer
        return {
            "status": task.status, "content_type": serializer.content_type,
            "content_encoding": serializer.content_encoding, "result": self._text(task.result),
            "traceback": task.traceback, "meta": self._text(meta), "task_name": task.name,
            "task_args": None if task.args is None else self._text(task.args),
            "task_kwargs": None if task.kwargs is None else self._text(task.kwargs),
            "worker": task.worker, "periodic_task_name": extra.get("periodic_task_name"),
        }

    def _task_record(self, row: Any) -> bytes:
        tid, encoding = row.task_id, row.content_encoding
        meta = self._value(row.meta, encoding, f"column meta of task {tid}") or {}
        if not isinstance(meta, dict):
            raise DecodeError(f"column meta of task {tid} must hold a mapping; check what wrote "
                              f"the row")
        children = meta.pop("children", None)
        known = {k: meta.pop(k, None) for k in META_FIELDS}
        return self.fields.task_record(TaskFields(
            task_id=tid, status=row.status or "PENDING",
            result=self._value(row.result, encoding, f"the result of task {tid}"),
            traceback=row.traceback, date_done=self._aware(row.date_done),
            children=list(children) if children else None, name=row.task_name,
            args=self._lenient(row.task_args, encoding, tid),
            kwargs=self._lenient(row.task_kwargs, encoding, tid),
            worker=row.worker, extra=meta, **known))

    def _lenient(self, text: str | None, encoding: str, task_id: str) -> Any:
        # Arguments are for display (Celery writes their repr); one that does not decode is
        # given as it is stored.
        try:
            return self._value(text, encoding, f"the arguments of task {task_id}")
        except DecodeError:
            return text

    # ------------------------------------------------------------------ writes

    def set(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        self._store(items, expires, replace=True)

    def add(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        self._store(items, expires, replace=False)

    def _store(self, items: Sequence[tuple[str, bytes]], expires: float | None,
               replace: bool) -> None:
        tasks: dict[str, dict[str, Any]] = {}
        groups: dict[str, dict[str, Any]] = {}
        rest: dict[str, bytes] = {}
        serializer = self.fields.serializer
        for key, value in items:  # the last write of a key in one batch wins
            kind = key_kind(key)
            if kind is None:
                rest[key] = value
            elif kind[0] == "task":
                tasks[kind[1]] = self._task_values(value)
            else:
                group = self.fields.group(kind[1], value)
                groups[kind[1]] = {"content_type": serializer.content_type,
                                   "content_encoding": serializer.content_encoding,
                                   "result": self._text(group.result)}

        def write() -> None:
            cutoff = self._cutoff()
            self._rows(self._tasks, "task_id", tasks, TASK_COLUMNS, replace, cutoff)
            self._rows(self._groups, "group_id", groups, GROUP_COLUMNS, replace, cutoff)
            self._keys(rest, expires, replace)

        if tasks or groups or rest:
            self._run("store results", write)

    def _rows(self, model: Any, ident: str, rows: Mapping[str, dict[str, Any]],
              columns: list[str], replace: bool, cutoff: datetime | None) -> None:
        """Insert or update rows of `model` by `ident` (`replace`), or insert only those that
        hold nothing live (add): one statement per kind, atomic per row."""
        if not rows:
            return
        manager = model.objects.using(self.alias)
        if not replace and cutoff is not None:
            # An expired row counts as nothing: take it over, re-checking the age in the
            # same statement, so a row written meanwhile is left alone.
            expired = set(manager.filter(**{f"{ident}__in": list(rows)}, date_done__lt=cutoff)
                          .values_list(ident, flat=True))
            now = timezone.now()
            for found in expired:
                values = {**rows[found], "date_done": now, "date_created": now}
                if rows[found].get("status") == "STARTED":
                    values["date_started"] = now
                manager.filter(**{ident: found}, date_done__lt=cutoff).update(**values)
            rows = {k: v for k, v in rows.items() if k not in expired}
        for started in (True, False):
            objs = [model(**{ident: key}, **values, **(
                {"date_started": timezone.now()} if started else {}))
                for key, values in rows.items() if (values.get("status") == "STARTED") is started]
            if not objs:
                continue
            if replace:
                manager.bulk_create(objs, update_conflicts=True, **self._conflict_on(ident),
                                    update_fields=columns + (["date_started"] if started else []))
            else:
                manager.bulk_create(objs, ignore_conflicts=True)

    def _conflict_on(self, field: str) -> dict[str, list[str]]:
        """The upsert's conflict target where the database names one (PostgreSQL, SQLite: ON
        CONFLICT (field)); MySQL and MariaDB have none (ON DUPLICATE KEY UPDATE fires on any
        unique key; `field` is the only one a new row can meet, its id being new)."""
        features = connections[self.alias].features
        return {"unique_fields": [field]} if features.supports_update_conflicts_with_target \
            else {}

    def _keys(self, items: Mapping[str, bytes], expires: float | None, replace: bool) -> None:
        if not items:
            return
        now = time.time()
        at = None if expires is None else now + expires
        manager = self._kv.objects.using(self.alias)
        if not replace:
            claimed = [key for key, value in items.items()
                       if manager.filter(key=key, expires_at__lte=now).update(
                           value=value, number=None, expires_at=at)]
            items = {k: v for k, v in items.items() if k not in claimed}
        objs = [self._kv(key=key, value=value, number=None, expires_at=at)
                for key, value in items.items()]
        if replace:
            manager.bulk_create(objs, update_conflicts=True, **self._conflict_on("key"),
                                update_fields=["value", "number", "expires_at"])
        else:
            manager.bulk_create(objs, ignore_conflicts=True)

    # ------------------------------------------------------------------ reads

    def get(self, key: str) -> bytes | None:
        kind = key_kind(key)
        if kind is None:
            live = Q(expires_at__isnull=True) | Q(expires_at__gt=time.time())
            row = self._run("read a result", lambda: self._kv.objects.using(self.alias).filter(
                live, key=key).values_list("value", "number").first())
            if row is None:
                return None
            return str(row[1]).encode() if row[0] is None else bytes(row[0])
        model, ident = ((self._tasks, "task_id") if kind[0] == "task"
                        else (self._groups, "group_id"))
        query = model.objects.using(self.alias).filter(**{ident: kind[1]})
        cutoff = self._cutoff()
        if cutoff is not None:
            query = query.filter(Q(date_done__isnull=True) | Q(date_done__gte=cutoff))
        found = self._run("read a result", query.first)
        if found is None:
            return None
        if kind[0] == "task":
            return self._task_record(found)
        result = self._value(found.result, found.content_encoding, f"saved group {kind[1]}")
        return self.fields.group_record(GroupFields(kind[1], result,
                                                    self._aware(found.date_done)))

    def delete(self, keys: Sequence[str]) -> None:
        by_kind: dict[str, list[str]] = {"task": [], "group": [], "kv": []}
        for key in keys:
            kind = key_kind(key)
            by_kind["kv" if kind is None else kind[0]].append(key if kind is None else kind[1])

        def forget() -> None:
            for model, ident, found in ((self._tasks, "task_id", by_kind["task"]),
                                        (self._groups, "group_id", by_kind["group"]),
                                        (self._kv, "key", by_kind["kv"])):
                if found:
                    model.objects.using(self.alias).filter(**{f"{ident}__in": found}).delete()

        if keys:
            self._run("forget results", forget)

    # ------------------------------------------------------------------ counters

    def incr(self, key: str, amount: int = 1, expires: float | None = None) -> int:
        """One transaction: an expired counter starts again, a missing one is inserted, then
        the database adds to it under its row lock and the new value is read back."""
        if key_kind(key) is not None:
            raise ConfigurationError(f"{key!r} is a result key, not a counter; counters live "
                                     f"under kernel's own keys")
        manager = self._kv.objects.using(self.alias)

        def count() -> int:
            now = time.time()
            at = None if expires is None else now + expires
            with transaction.atomic(using=self.alias):
                manager.filter(key=key, expires_at__lte=now).update(
                    value=None, number=0, expires_at=None)
                manager.bulk_create([self._kv(key=key, value=None, number=0, expires_at=at)],
                                    ignore_conflicts=True)
                change: dict[str, Any] = {"number": F("number") + int(amount), "value": None}
                if at is not None:
                    change["expires_at"] = at
                manager.filter(key=key, number__isnull=False).update(**change)
                number = manager.filter(key=key).values_list("number", flat=True).get()
            return int(number if number is not None else 0)

        # Not retried: a commit lost with its connection may have counted already.
        return self._run("count", count, retry=False)

    def chord_start(self, key: str, members: Sequence[str], expires: float | None) -> None:
        """django-celery-results' ``ChordCounter``: the header's result tuples and its size,
        which a Celery worker counts down as kernel's `chord_part` does."""
        group_id = key[len(GROUP_KEY_PREFIX):]
        tuples = json.dumps([[[member, None], None] for member in members])

        def start() -> None:
            with transaction.atomic(using=self.alias):
                # Members counted by an earlier chord of this id are not this one's.
                self._kv.objects.using(self.alias).filter(key__startswith=key + ".d.").delete()
                self._chords.objects.using(self.alias).update_or_create(
                    group_id=group_id, defaults={"sub_tasks": tuples, "count": len(members)})

        self._run("start a chord", start)

    def chord_part(self, key: str, index: int | None, task_id: str, entry: bytes,
                   expires: float | None) -> list[bytes] | None:
        """Count one member in the chord's ``ChordCounter`` row, as Celery's workers do, in
        one transaction with the member's entry (whose key also tells a redelivered member).
        The call that counts the last member deletes the row and gets every entry; members a
        Celery worker ran have none, and are read from their results."""
        group_id = key[len(GROUP_KEY_PREFIX):]
        marker = f"{key}.d.{task_id}.{index}"
        position = b"" if index is None else str(index).encode()
        value = b"%s\n%s\n%s" % (position, task_id.encode(), entry)
        kv = self._kv.objects.using(self.alias)

        def count() -> tuple[list[Any], list[tuple[str, bytes]]] | None:
            now = time.time()
            at = None if expires is None else now + expires
            with transaction.atomic(using=self.alias):
                # The member's entry first: a write, so SQLite takes its lock before reading.
                if not kv.filter(key=marker, expires_at__lte=now).update(value=value,
                                                                         expires_at=at):
                    try:
                        with transaction.atomic(using=self.alias):
                            kv.create(key=marker, value=value, expires_at=at)
                    except IntegrityError:
                        return None  # counted already (a redelivered member)
                chords = self._chords.objects.using(self.alias).filter(group_id=group_id)
                if not chords.filter(count__gt=0).update(count=F("count") - 1):
                    transaction.set_rollback(True, using=self.alias)
                    return None  # no such chord (finished, or never started)
                counter = chords.get()
                if counter.count:
                    return None
                counter.delete()
                found = kv.filter(key__startswith=key + ".d.")
                entries = [(str(k), bytes(v)) for k, v in found.values_list("key", "value")]
                found.delete()
                return json.loads(counter.sub_tasks or "[]"), entries

        done = self._run("count a chord member", count, retry=False)
        return None if done is None else self._entries(*done)

    def _entries(self, tuples: list[Any], stored: list[tuple[str, bytes]]) -> list[bytes]:
        """Every member's entry in index order: those kernel workers stored, and for the
        others (a Celery worker ran them) one made from the member's result row."""
        parts = {}
        for _, value in stored:
            place, tid, entry = value.split(b"\n", 2)
            parts[tid.decode()] = (place, entry)
        wanted = [t[0][0] for t in tuples if isinstance(t, list) and t and t[0]]
        missing = [(n, tid) for n, tid in enumerate(wanted) if tid not in parts]
        if missing:
            rows = {row.task_id: row for row in self._run("read a chord's results", lambda: list(
                self._tasks.objects.using(self.alias).filter(
                    task_id__in=[tid for _, tid in missing])))}
            for n, tid in missing:
                row = rows.get(tid)
                if row is None:
                    log.warning("chord member %s has no result; its value in the body is None",
                                tid)
                    status, result = "PENDING", None
                else:
                    status = row.status
                    result = self._value(row.result, row.content_encoding,
                                         f"the result of task {tid}")
                parts[tid] = (str(n).encode(), self.fields.dumps([1, tid, status, result]))
        ordered = sorted(parts.values(), key=lambda p: (not p[0], int(p[0] or 0)))
        return [entry for _, entry in ordered]

    # ------------------------------------------------------------------ upkeep

    def cleanup(self) -> dict[str, int]:
        """Delete task and group rows done more than ``result_expires`` ago (what Celery's
        ``celery.backend_cleanup`` deletes) and expired ``kernel_kv`` keys; returns how many,
        by kind."""

        def sweep() -> dict[str, int]:
            deleted = {"task": 0, "group": 0}
            cutoff = self._cutoff()
            if cutoff is not None:
                for kind, model in (("task", self._tasks), ("group", self._groups)):
                    deleted[kind] = model.objects.using(self.alias).filter(
                        date_done__lt=cutoff).delete()[0]
            deleted["kv"] = self._kv.objects.using(self.alias).filter(
                expires_at__lte=time.time()).delete()[0]
            return deleted

        return self._run("delete expired results", sweep)

    def close(self) -> None:
        # This thread's connection; Django opens another when it is next needed.
        conn = connections[self.alias]
        if not conn.in_atomic_block:
            conn.close()
