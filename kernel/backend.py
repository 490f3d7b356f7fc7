"""The kernel side of results: encodes records with the result serializer and keeps them in
whichever `ResultStore` the configuration selects. One place writes the record format."""

from __future__ import annotations

import time
import traceback as tb_module
from collections import OrderedDict
from typing import Any

from kernel import states
from kernel.codec import Codec
from kernel.errors import ConfigurationError, DecodeError
from kernel.interfaces.results import ResultStore
from kernel.message import Request
from kernel.result import exception_to_dict, now_iso, task_key

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

    def decode(self, data: bytes) -> dict[str, Any]:
        meta = self.codec.serializer(self.serializer).loads(data)
        if not isinstance(meta, dict) or "status" not in meta:
            raise DecodeError("stored result is not a result record (no 'status')")
        return meta

    # ------------------------------------------------------------------ operations

    def store_many(self, metas: list[dict[str, Any]], request: Request | None = None) -> None:
        """Store records; a worker passes the `request` they answer, so stores that send
        results back to the caller (rpc) know where it waits."""
        store = self._need_store()
        items = [(task_key(m["task_id"]), self.encode(m)) for m in metas]
        if request is None:
            store.set(items, self.expires)
            for meta, (_, data) in zip(metas, items, strict=True):
                if meta["status"] == states.PENDING:
                    self._sent[meta["task_id"]] = data
            while len(self._sent) > SENT_REMEMBERED:
                self._sent.popitem(last=False)
        else:
            store.set_reply(request.properties, items, self.expires)

    def store_result(self, task_id: str, status: str, result: Any, *,
                     request: Request | None = None, **kw: Any) -> None:
        self.store_many([self.record(task_id, status, result, **kw)], request)

    def reply_address(self) -> str | None:
        """The ``reply_to`` for tasks this process sends (None: results are not sent back)."""
        return None if self.store is None else self.store.reply_address()

    def get_meta(self, task_id: str) -> dict[str, Any] | None:
        data = self._need_store().get(task_key(task_id))
        return None if data is None else self.decode(data)

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
            meta = self.decode(data)
            if meta.get("status") in states.READY_STATES:
                return meta
            seen = data  # an intermediate record (PENDING, STARTED, RETRY): wait for the next

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
