"""kernel's records as the documents of Celery's MongoDB backend, and back.

A task is ``{"_id": task id, "status", "result", "date_done", "traceback", "children"}`` in
``celery_taskmeta``, with ``group_id``, ``parent_id`` and (``result_extended``) ``name``,
``args``, ``kwargs``, ``worker``, ``retries``, ``queue`` where the record has them. ``result``
holds the result serializer's encoding (text for json and yaml, binary for pickle and msgpack),
as Celery writes it; ``date_done`` is a BSON date (milliseconds), ``children``, ``args`` and
``kwargs`` are BSON values. A saved group is ``{"_id": group id, "result": the encoded list of
member ids, "date_done"}`` in ``celery_groupmeta``. Every other key is ``{"_id": key,
"value": bytes or a counter}`` in kernel's own collection.

kernel adds ``expires_at`` (a BSON date, the TTL index's field) to what it writes, and to a
saved group whose members Celery's list of ids cannot describe (nested groups, parents) the
whole result tuple, ``kernel_tuple``. Celery ignores both.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from kernel.plugin import DecodeError, GroupFields, RecordFields, TaskFields

Document = dict[str, Any]

#: Celery's task fields, in its order; and its extended ones (``result_extended``).
EXTENDED = ("name", "args", "kwargs", "worker", "retries", "queue")
CELERY_TASK_FIELDS = ("_id", "status", "result", "date_done", "traceback", "children",
                      *EXTENDED)
#: fields kernel writes for itself.
EXPIRES_AT = "expires_at"
TUPLE = "kernel_tuple"
_NOT_EXTRA = frozenset((*CELERY_TASK_FIELDS, EXPIRES_AT, "task_id"))


def moment(value: Any) -> datetime | None:
    """A stored date as an aware UTC datetime (None if it is not one). nx-27017 keeps a date
    given to ``$set`` as its text, which is read here too."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else \
        value.astimezone(timezone.utc)


def expired(doc: Document, now: datetime, cutoff: datetime | None) -> bool:
    """Whether `doc` is past its ``expires_at``, or (`cutoff`: ``result_expires`` ago) was done
    before `cutoff`: Celery's rule, the one its own documents have."""
    at = moment(doc.get(EXPIRES_AT))
    if at is not None and at <= now:
        return True
    done = moment(doc.get("date_done")) if cutoff is not None else None
    return done is not None and cutoff is not None and done < cutoff


def _plain(value: Any) -> bool:
    """Whether a stored value is one the result serializer can carry back (Celery's extra
    fields are: group_id, parent_id, stamps)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return True
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _member_ids(group_id: str, value: Any) -> tuple[list[str], bool]:
    """The member ids of a group's result tuple, and whether ``[[group id, None], [[[id,
    None], None], ...]]`` rebuilt from them is the tuple itself."""
    try:
        (gid, parent), members = value
        pairs = [(member[0], member[1]) for member in members]
        ids = [str(pair[0][0]) for pair in pairs]
    except (TypeError, ValueError, IndexError, KeyError):
        return [], False
    plain = gid == group_id and parent is None and all(
        sub is None and head[1] is None and isinstance(head[0], str) for head, sub in pairs)
    return ids, plain


class Documents:
    """Records <-> documents with the app's result serializer (see the module docstring)."""

    def __init__(self, fields: RecordFields) -> None:
        self.fields = fields
        self._text = fields.serializer.content_encoding != "binary"

    # ------------------------------------------------------------------ values

    def encode(self, value: Any) -> str | bytes:
        """A value as Celery's ``result`` field holds it."""
        data = self.fields.dumps(value)
        return data.decode("utf-8") if self._text else data

    def decode(self, stored: Any, what: str) -> Any:
        """A ``result`` field: the serializer's text or bytes; another BSON value (Celery's
        ``bson`` serializer stores values as they are) is taken as it is."""
        if isinstance(stored, str):
            return self.fields.loads(stored.encode("utf-8"), what)
        if isinstance(stored, bytes):
            return self.fields.loads(stored, what)
        return stored

    # ------------------------------------------------------------------ tasks

    def task(self, task_id: str, data: bytes, now: datetime, expires: float | None) -> Document:
        task = self.fields.task(data)
        doc: Document = {
            "_id": task_id, "status": task.status, "result": self.encode(task.result),
            "date_done": task.date_done, "traceback": task.traceback,
            "children": list(task.children or []),
        }
        for name in EXTENDED:
            value = getattr(task, name)
            if value is not None:
                doc[name] = value
        for name, value in task.extra.items():
            if name not in _NOT_EXTRA and not name.startswith("$"):
                doc[name] = value  # group_id and parent_id, as Celery writes them
        if expires is not None:
            # Not ready yet: from now, so a task that never ran expires too.
            doc[EXPIRES_AT] = (task.date_done or now) + timedelta(seconds=expires)
        return doc

    def task_record(self, doc: Document) -> bytes:
        task_id = str(doc["_id"])
        status = doc.get("status")
        if not isinstance(status, str):
            raise DecodeError(f"the document of task {task_id} has no status (it has "
                              f"{sorted(doc)}); check what writes the task collection")
        children = doc.get("children")
        if children is not None and not isinstance(children, list):
            raise DecodeError(f"the children of task {task_id} are not a list; check what "
                              f"writes the task collection")
        extended: dict[str, Any] = {name: doc.get(name) for name in EXTENDED}
        retries = extended["retries"]
        if retries is not None and not isinstance(retries, int):
            extended["retries"] = None
        return self.fields.task_record(TaskFields(
            task_id=task_id, status=status,
            result=self.decode(doc.get("result"), f"the result of task {task_id}"),
            traceback=doc.get("traceback"), date_done=moment(doc.get("date_done")),
            children=list(children) if children else None,
            extra={k: v for k, v in doc.items() if k not in _NOT_EXTRA and _plain(v)},
            **extended))

    # ------------------------------------------------------------------ groups

    def group(self, group_id: str, data: bytes, now: datetime,
              expires: float | None) -> Document:
        group = self.fields.group(group_id, data)
        ids, rebuilt = _member_ids(group_id, group.result)
        done = group.date_done or now
        doc: Document = {"_id": group_id, "result": self.encode(ids), "date_done": done}
        if not rebuilt:
            doc[TUPLE] = group.result
        if expires is not None:
            doc[EXPIRES_AT] = done + timedelta(seconds=expires)
        return doc

    def group_record(self, doc: Document) -> bytes:
        group_id = str(doc["_id"])
        if TUPLE in doc:
            result = doc[TUPLE]
        else:
            ids = self.decode(doc.get("result"), f"saved group {group_id}")
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise DecodeError(f"saved group {group_id} is not a list of task ids; check "
                                  f"what writes the group collection")
            result = [[group_id, None], [[[i, None], None] for i in ids]]
        return self.fields.group_record(GroupFields(group_id, result,
                                                    moment(doc.get("date_done"))))

    # ------------------------------------------------------------------ kernel's keys

    @staticmethod
    def value(doc: Document) -> bytes:
        """A kernel key's value: bytes, or a counter's number as its digits."""
        value = doc.get("value")
        if isinstance(value, bytes):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value).encode()
        raise DecodeError(f"key {doc['_id']!r} holds a {type(value).__name__}, not bytes or a "
                          f"counter; check what writes kernel's collection")
