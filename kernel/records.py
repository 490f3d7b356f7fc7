"""Result records in Celery's format, and the one place that writes and reads them.

A record is ``{"status", "result", "traceback", "children", "date_done", "task_id"}`` under
``celery-task-meta-<id>``; saved groups and chord counters live under
``celery-taskset-meta-<group id>``. `ResultBackend` encodes records with the result serializer
and keeps them in whichever `ResultStore` the configuration selects, so Celery's `AsyncResult`
reads kernel's results and the reverse.
"""

from __future__ import annotations

import sys
import time
import traceback as tb_module
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any

from kernel import states
from kernel.codec import Codec
from kernel.errors import ConfigurationError, DecodeError, RemoteError
from kernel.interfaces.results import ResultStore
from kernel.message import Request

TASK_KEY_PREFIX = "celery-task-meta-"


def task_key(task_id: str) -> str:
    return TASK_KEY_PREFIX + task_id


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


#: kernel errors that Celery has too, under the module Celery keeps them in, so each side's
#: `AsyncResult` raises its own class for the other's records.
_CELERY_NAMES = {
    "TaskRevokedError": "celery.exceptions",
    "ChordError": "celery.exceptions",
    "TimeLimitExceeded": "celery.exceptions",
    "SoftTimeLimitExceeded": "celery.exceptions",
    "WorkerLostError": "billiard.exceptions",
}


def exception_to_dict(exc: BaseException) -> dict[str, Any]:
    cls = type(exc)
    module = cls.__module__
    if module == "kernel.errors" and cls.__qualname__ in _CELERY_NAMES:
        module = _CELERY_NAMES[cls.__qualname__]
    return {
        "exc_type": cls.__qualname__,
        "exc_message": list(_plain_args(exc.args)),
        "exc_module": module,
    }


def _plain_args(args: tuple[Any, ...]) -> list[Any]:
    plain = (str, int, float, bool, type(None), list, dict)
    return [a if isinstance(a, plain) else repr(a) for a in args]


_standins: dict[tuple[str, str], type[RemoteError]] = {}


def exception_from_dict(data: dict[str, Any]) -> BaseException:
    """Rebuild a task's exception: the real type where its module is already imported here and
    it is an exception class, otherwise a `RemoteError` subclass with the same name and args.

    Modules are looked up, never imported: a result record must not make the reader run a
    module's import-time code (Celery reads `sys.modules` for the same reason)."""
    name = str(data.get("exc_type") or "Exception")
    module = str(data.get("exc_module") or "builtins")
    message = data.get("exc_message")
    args = tuple(message) if isinstance(message, (list, tuple)) else (message,)
    if _CELERY_NAMES.get(name) == module:
        module = "kernel.errors"  # kernel's own class, even where Celery is imported too
    cls: Any = sys.modules.get(module)
    for part in name.split("."):
        cls = getattr(cls, part, None)
    if isinstance(cls, type) and issubclass(cls, BaseException):
        try:
            return cls(*args)
        except Exception:  # noqa: BLE001 - a constructor with other arguments: fall back
            pass
    key = (module, name)
    standin = _standins.get(key)
    if standin is None:
        standin = type(name.rsplit(".", 1)[-1], (RemoteError,), {
            "exc_type": name, "exc_module": module, "__module__": "kernel.remote"})
        _standins[key] = standin
    return standin(*args)


#: how many sent tasks' PENDING records a client remembers (see `ResultBackend._sent`).
SENT_REMEMBERED = 10_000

#: saved groups and chord counters live under this prefix (Celery's name).
GROUP_KEY_PREFIX = "celery-taskset-meta-"


def group_key(group_id: str) -> str:
    return GROUP_KEY_PREFIX + group_id


class ResultBackend:
    def __init__(self, store: ResultStore | None, codec: Codec, serializer: str,
                 expires: float | None) -> None:
        self.store = store
        self.codec = codec
        self.serializer = serializer
        self.expires = expires
        self._content_type = codec.serializer(serializer).content_type
        #: task id -> the PENDING record this process wrote when it sent the task, so waiting
        #: for its result starts past it (one subscription fewer per call).
        self._sent: OrderedDict[str, bytes] = OrderedDict()

    def _need_store(self) -> ResultStore:
        if self.store is None:
            raise ConfigurationError("no result backend is configured (result_backend=None); "
                                     "set result_backend to store and read results")
        return self.store

    # ------------------------------------------------------------------ records

    def record(self, task_id: str, status: str, result: Any, *, traceback: str | None = None,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
        if isinstance(result, BaseException):
            if traceback is None and result.__traceback__ is not None:
                traceback = "".join(tb_module.format_exception(result))
            result = exception_to_dict(result)
        meta: dict[str, Any] = {
            "status": status,
            "result": result,
            "traceback": traceback,
            "children": [],
            "date_done": now_iso() if status in states.READY_STATES else None,
            "task_id": task_id,
        }
        if extra:
            meta.update(extra)
        return meta

    def encode(self, meta: dict[str, Any]) -> bytes:
        try:
            return self.codec.serializer(self.serializer).dumps(meta)
        except TypeError as exc:
            # A return value the result serializer cannot carry: store that as the failure.
            failure = dict(meta, status=states.FAILURE, result=exception_to_dict(exc),
                           traceback=None, date_done=now_iso())
            return self.codec.serializer(self.serializer).dumps(failure)

    def decode(self, data: bytes, task_id: str | None = None) -> dict[str, Any]:
        """The record in `data`; a `DecodeError` naming the task, the store and what to do
        when it is none (stores of opaque bytes hand over whatever the key holds)."""
        try:
            meta = self.codec.serializer(self.serializer).loads(data)
        except DecodeError as exc:
            if task_id is None:
                raise
            raise DecodeError(
                f"the result of task {task_id} in {self.store} does not decode with the result "
                f"serializer {self.serializer!r} ({exc}); check result_serializer matches what "
                f"wrote it, or forget the result (AsyncResult.forget)") from None
        if not isinstance(meta, dict) or "status" not in meta:
            raise DecodeError("stored result is not a result record (no 'status')"
                              if task_id is None else
                              f"the result of task {task_id} in {self.store} is not a result "
                              f"record (no 'status'); forget it (AsyncResult.forget)")
        return meta

    # ------------------------------------------------------------------ operations

    def store_many(self, metas: list[dict[str, Any]], request: Request | None = None) -> None:
        """Store records; a worker passes the `request` they answer, so stores that send
        results back to the caller (rpc) know where it waits."""
        store = self._need_store()
        items = [(task_key(m["task_id"]), self.encode(m)) for m in metas]
        if request is None:
            store.set(items, self.expires)
        else:
            store.set_reply(request.properties, items, self.expires)

    def store_sent(self, task_ids: list[str]) -> None:
        """The PENDING records of tasks about to be sent, where no record is yet (`add`: a
        write held up in a network cut must not land on the worker's result later)."""
        items = [(task_key(i), self.encode(self.record(i, states.PENDING, None)))
                 for i in task_ids]
        self._need_store().add(items, self.expires)
        for task_id, (_, data) in zip(task_ids, items, strict=True):
            self._sent[task_id] = data
        while len(self._sent) > SENT_REMEMBERED:
            self._sent.popitem(last=False)

    def store_result(self, task_id: str, status: str, result: Any, *,
                     request: Request | None = None, **kw: Any) -> None:
        self.store_many([self.record(task_id, status, result, **kw)], request)

    def reply_address(self) -> str | None:
        """The ``reply_to`` for tasks this process sends (None: results are not sent back)."""
        return None if self.store is None else self.store.reply_address()

    def get_meta(self, task_id: str) -> dict[str, Any] | None:
        data = self._need_store().get(task_key(task_id))
        return None if data is None else self.decode(data, task_id)

    def just_sent(self, task_id: str) -> bool:
        """This process sent `task_id` and has not waited for it yet: its record is the PENDING
        one written then, or newer (reading it first would only cost a round trip)."""
        return task_id in self._sent

    def wait_ready(self, task_id: str, timeout: float | None) -> dict[str, Any] | None:
        """Wait until the record is in a ready state (intermediate states are skipped)."""
        store = self._need_store()
        deadline = None if timeout is None else time.monotonic() + timeout
        key = task_key(task_id)
        # What this process wrote when it sent the task: no need to read it back first.
        seen: bytes | None = self._sent.pop(task_id, None)
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            data = store.wait(key, left, unless=seen)
            if data is None:
                return None
            meta = self.decode(data, task_id)
            if meta.get("status") in states.READY_STATES:
                return meta
            seen = data  # an intermediate record (PENDING, STARTED, RETRY): wait for the next

    def cleanup(self) -> dict[str, int]:
        """Delete expired records where the store keeps them until told (`ResultStore.cleanup`);
        how many, by kind."""
        return self._need_store().cleanup()

    def forget(self, task_id: str) -> None:
        self._need_store().delete([task_key(task_id)])

    # ------------------------------------------------------------------ groups and chords

    def save_group(self, group_id: str, meta: dict[str, Any]) -> None:
        data = self.codec.serializer(self.serializer).dumps(meta)
        self._need_store().set([(group_key(group_id), data)], self.expires)

    def restore_group(self, group_id: str) -> dict[str, Any] | None:
        data = self._need_store().get(group_key(group_id))
        if data is None:
            return None
        meta = self.codec.serializer(self.serializer).loads(data)
        if not isinstance(meta, dict) or "result" not in meta:
            raise DecodeError(f"stored group {group_id} is not a saved group (no 'result')")
        return meta

    def delete_group(self, group_id: str) -> None:
        self._need_store().delete([group_key(group_id)])

    def chord_entry(self, task_id: str, status: str, result: Any) -> bytes:
        """One header member's outcome as Celery's Redis backend keeps it in ``<gid>.j``:
        ``[1, task_id, status, result]``, an exception as its dict."""
        if isinstance(result, BaseException):
            result = exception_to_dict(result)
        serializer = self.codec.serializer(self.serializer)
        try:
            return serializer.dumps([1, task_id, status, result])
        except TypeError as exc:
            return serializer.dumps([1, task_id, states.FAILURE, exception_to_dict(exc)])

    def chord_outcome(self, data: bytes) -> tuple[str, str, Any]:
        """``(task_id, status, result)`` of a `chord_entry`."""
        entry = self.codec.serializer(self.serializer).loads(data)
        if not isinstance(entry, list) or len(entry) != 4:
            raise DecodeError("chord entry is not [1, task_id, status, result]")
        return str(entry[1]), str(entry[2]), entry[3]
