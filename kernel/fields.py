"""Result records as fields: what a store that keeps Celery's columns or documents (SQL tables,
MongoDB documents, django-celery-results' rows) stores instead of a record's opaque bytes.

Key-value stores keep each record as the bytes `kernel.records.ResultBackend` encoded. A
structured store splits a task's record into Celery's fields on `set` and rebuilds the bytes on
`get`, so rows a Celery worker wrote read as kernel records, and the reverse::

    fields = options["record_fields"]            # a RecordFields, given to every store's factory
    kind = key_kind(key)                          # ("task", id), ("group", id) or None
    if kind and kind[0] == "task":
        task = fields.task(value)                 # TaskFields: status, result, date_done, ...
        row = {"status": task.status, "result": fields.dumps(task.result), ...}
        ...
        value = fields.task_record(TaskFields(task_id, status, result=fields.loads(blob), ...))

Other keys (chord counters, revocations, unique claims) stay opaque bytes: `key_kind` returns
None for them, and the store keeps them its own way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from kernel import states
from kernel.errors import DecodeError
from kernel.interfaces.codec import Serializer
from kernel.records import GROUP_KEY_PREFIX, TASK_KEY_PREFIX

#: the record keys Celery's extended result (``result_extended``) adds, in Celery's order.
EXTENDED = ("name", "args", "kwargs", "worker", "retries", "queue")

#: what follows a group id in the keys kernel counts chords with (``ResultStore.chord_part``'s
#: ``.s .t .n .w .e<N> .d.<task>.<index>``, a finished chord's claim ``.c``).
_CHORD_SUFFIX = re.compile(r"\.(?:[stnwc]|e\d+|d\..*)\Z", re.DOTALL)


def key_kind(key: str) -> tuple[Literal["task", "group"], str] | None:
    """``("task", id)`` for ``celery-task-meta-<id>``, ``("group", id)`` for a saved group's
    ``celery-taskset-meta-<id>``, None for every other key (chord counters included)."""
    if key.startswith(TASK_KEY_PREFIX):
        return "task", key[len(TASK_KEY_PREFIX):]
    if key.startswith(GROUP_KEY_PREFIX) and not _CHORD_SUFFIX.search(key):
        return "group", key[len(GROUP_KEY_PREFIX):]
    return None


@dataclass
class TaskFields:
    """A task's record as Celery's result columns hold it.

    `result` is the decoded value (an exception as its ``exc_type``/``exc_message`` dict),
    `date_done` an aware UTC datetime (None while the task is not ready), `children`,
    `args` and `kwargs` decoded values. `extra` holds the record's other keys (``group_id``,
    ``parent_id``, ...), which Celery's tables have no column for.
    """

    task_id: str
    status: str
    result: Any = None
    traceback: str | None = None
    date_done: datetime | None = None
    children: list[Any] | None = None
    name: str | None = None
    args: Any = None
    kwargs: Any = None
    worker: str | None = None
    retries: int | None = None
    queue: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class GroupFields:
    """A saved group as Celery's group columns hold it: `result` is the group's tuple
    (``[[id, parent], [member tuples...]]``), `date_done` an aware UTC datetime."""

    group_id: str
    result: Any
    date_done: datetime | None = None


class RecordFields:
    """Records <-> fields with the app's result serializer (``result_serializer``): the App
    gives one to every result store's factory as ``options["record_fields"]``.

    `task_record(task(data))` MUST give back a record with the same status, result, traceback,
    children, date_done (to the microsecond) and extended fields as `data`; values Celery keeps
    encoded in binary columns (result, children, args, kwargs) use `dumps` and `loads`, the
    very encoding Celery's database backend writes there.
    """

    def __init__(self, serializer: Serializer) -> None:
        self.serializer = serializer

    def __repr__(self) -> str:
        return f"<RecordFields {self.serializer.name}>"

    def dumps(self, value: Any) -> bytes:
        """A value as Celery's binary columns hold it (the result serializer's bytes)."""
        return self.serializer.dumps(value)

    def loads(self, data: bytes, what: str = "a stored value") -> Any:
        """The value of a binary column; a `DecodeError` naming `what` if it does not decode."""
        try:
            return self.serializer.loads(data)
        except Exception as exc:  # noqa: BLE001 - every serializer's failure, one sentence
            raise DecodeError(
                f"{what} does not decode with the result serializer "
                f"{self.serializer.name!r} ({exc}); check result_serializer matches what "
                f"wrote it") from None

    # ------------------------------------------------------------------ tasks

    def task(self, data: bytes) -> TaskFields:
        """The fields of an encoded task record; `DecodeError` if it is not one."""
        meta = self.loads(data, "a task's result record")
        if not isinstance(meta, dict) or not isinstance(meta.get("status"), str):
            raise DecodeError("a task's result record must be a mapping with a 'status'; "
                              "check what writes celery-task-meta-* keys")
        known = {"task_id", "status", "result", "traceback", "date_done", "children",
                 *EXTENDED}
        children = meta.get("children")
        return TaskFields(
            task_id=str(meta.get("task_id") or ""),
            status=meta["status"],
            result=meta.get("result"),
            traceback=meta.get("traceback"),
            date_done=parse_date(meta.get("date_done")),
            children=list(children) if children else None,
            extra={k: v for k, v in meta.items() if k not in known},
            **{k: meta.get(k) for k in EXTENDED},
        )

    def task_record(self, fields: TaskFields) -> bytes:
        """The encoded record of a task's fields, as kernel and Celery's key-value backends
        write it (extended fields only where set)."""
        ready = fields.status in states.READY_STATES
        meta: dict[str, Any] = {
            "status": fields.status,
            "result": fields.result,
            "traceback": fields.traceback,
            "children": list(fields.children or []),
            "date_done": format_date(fields.date_done) if ready else None,
            "task_id": fields.task_id,
        }
        meta.update(fields.extra)
        for name in EXTENDED:
            value = getattr(fields, name)
            if value is not None:
                meta[name] = value
        return self.serializer.dumps(meta)

    # ------------------------------------------------------------------ groups

    def group(self, group_id: str, data: bytes) -> GroupFields:
        """The fields of an encoded saved group (``{"result": tuple}``)."""
        meta = self.loads(data, f"saved group {group_id}")
        if not isinstance(meta, dict) or "result" not in meta:
            raise DecodeError(f"saved group {group_id} must be a mapping with a 'result'; "
                              f"check what writes celery-taskset-meta-* keys")
        return GroupFields(group_id, meta["result"], parse_date(meta.get("date_done")))

    def group_record(self, fields: GroupFields) -> bytes:
        """The encoded saved group, as kernel's `GroupResult.restore` reads it."""
        return self.serializer.dumps({"result": fields.result})


def parse_date(value: Any) -> datetime | None:
    """A record's ``date_done`` (ISO text, or a datetime) as an aware UTC datetime; naive
    values are UTC, as Celery writes them (``enable_utc``)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise DecodeError(f"date_done {value!r} is not an ISO 8601 date; check what wrote "
                              f"the record") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def format_date(moment: datetime | None) -> str | None:
    """``date_done`` as kernel's records carry it (ISO 8601, UTC)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()


__all__ = ["EXTENDED", "GroupFields", "RecordFields", "TaskFields", "format_date", "key_kind",
           "parse_date"]
