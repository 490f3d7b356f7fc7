"""Result records (Celery's format) and the handles that read them: `AsyncResult`, `EagerResult`.

A record is ``{"status", "result", "traceback", "children", "date_done", "task_id"}`` under the key
``celery-task-meta-<id>``, so Celery's `AsyncResult` reads kernel results and the reverse.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from kernel import states
from kernel.errors import RemoteError, ResultNotStored, TimeoutError

if TYPE_CHECKING:
    from kernel.app import App
    from kernel.group_result import AnyResult

R = TypeVar("R")
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


class AsyncResult(Generic[R]):
    """A handle on a task's result, by id. Cheap to create; reads the result store on demand."""

    def __init__(self, id: str, app: App, *, ignored: bool = False) -> None:
        self.id = id
        self.app = app
        self._ignored = ignored
        self._meta: dict[str, Any] | None = None
        #: the result of the task before this one in a chain (or a chord's header), when
        #: known here: the handle a canvas returned, or one rebuilt from a result tuple.
        self.parent: AnyResult | None = None

    def __repr__(self) -> str:
        return f"<AsyncResult {self.id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncResult) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def _fetch(self) -> dict[str, Any] | None:
        if self._meta is not None and self._meta.get("status") in states.READY_STATES:
            return self._meta
        meta = self.app.backend.get_meta(self.id)
        if meta is not None:
            self._meta = meta
        return meta

    @property
    def state(self) -> str:
        """The record's status. Without a record: UNKNOWN when sends are recorded
        (``task_track_sent``, the default: this id was never sent here, or its record
        expired), PENDING otherwise (Celery's meaning: waiting or unknown)."""
        meta = self._fetch()
        if meta is None:
            return states.UNKNOWN if self.app.conf.task_track_sent else states.PENDING
        return str(meta.get("status", states.PENDING))

    status = state

    def ready(self) -> bool:
        return self.state in states.READY_STATES

    def successful(self) -> bool:
        return self.state == states.SUCCESS

    def failed(self) -> bool:
        return self.state == states.FAILURE

    @property
    def result(self) -> Any:
        """The return value, or the exception for failures; None while not ready."""
        meta = self._fetch()
        if meta is None:
            return None
        if meta.get("status") in states.EXCEPTION_STATES and isinstance(meta.get("result"), dict):
            return exception_from_dict(meta["result"])
        return meta.get("result")

    info = result

    @property
    def traceback(self) -> str | None:
        meta = self._fetch()
        return None if meta is None else meta.get("traceback")

    @property
    def date_done(self) -> str | None:
        meta = self._fetch()
        return None if meta is None else meta.get("date_done")

    def get(self, timeout: float | None = None, propagate: bool = True) -> R:
        """Wait for the result and return it; re-raise the task's exception (its own type, or a
        `RemoteError` stand-in) when `propagate`; `kernel.TimeoutError` after `timeout` s."""
        if self._ignored:
            raise ResultNotStored(f"task {self.id} was sent with ignore_result=True; nothing "
                                  f"will be stored to wait for")
        backend = self.app.backend
        meta = None if self._meta is None and backend.just_sent(self.id) else self._fetch()
        if meta is None or meta.get("status") not in states.READY_STATES:
            meta = backend.wait_ready(self.id, timeout)
            if meta is None:
                raise TimeoutError(f"task {self.id} did not finish within {timeout} s "
                                   f"(state {self.state}); is a worker consuming its queue?")
            self._meta = meta
        if meta["status"] in states.PROPAGATE_STATES and propagate:
            raise self.result
        return self.result  # type: ignore[no-any-return]

    async def aget(self, timeout: float | None = None, propagate: bool = True) -> R:
        """`get` for async code: waits in a thread so the event loop keeps running."""
        import asyncio

        return await asyncio.to_thread(self.get, timeout, propagate)

    def revoke(self, terminate: bool = False) -> None:
        """Make sure the task never runs (on any worker, also ones started later); with
        `terminate`, stop it if it is running."""
        self.app.control.revoke(self.id, terminate=terminate)
        self._meta = None

    def forget(self) -> None:
        self.app.backend.forget(self.id)
        self._meta = None

    # ------------------------------------------------------------------ the task graph

    def as_tuple(self) -> list[Any]:
        """Celery's result tuple: ``[[id, parent_tuple_or_null], null]``."""
        return [[self.id, None if self.parent is None else self.parent.as_tuple()], None]

    @property
    def children(self) -> list[AnyResult]:
        """Results of the tasks this one sent (from inside, callbacks, the next chain step),
        as recorded with its result; empty until it finished."""
        from kernel.group_result import from_tuple

        meta = self._fetch()
        return [from_tuple(c, self.app) for c in (meta or {}).get("children") or ()]

    def collect(self, timeout: float | None = None, intermediate: bool = True
                ) -> Iterator[tuple[AnyResult, Any]]:
        """Wait for this task, then for every task it sent, depth first, yielding
        ``(result, value)`` pairs: the whole tree a canvas grew from here. With
        ``intermediate=False``, a task whose value is not a leaf of the tree is not yielded."""
        stack: list[AnyResult] = [self]
        while stack:
            node = stack.pop()
            value = node.get(timeout=timeout)
            kids = node.children
            if intermediate or not kids:
                yield node, value
            stack.extend(reversed(kids))


class EagerResult(AsyncResult[R]):
    """The result of a task run inline (``task_always_eager`` or `Task.apply`)."""

    def __init__(self, id: str, app: App, status: str, value: Any, tb: str | None) -> None:
        super().__init__(id, app)
        self._meta = {
            "status": status,
            "result": exception_to_dict(value) if isinstance(value, BaseException) else value,
            "traceback": tb,
            "task_id": id,
            "date_done": now_iso(),
        }
        self._exc = value if isinstance(value, BaseException) else None

    def _fetch(self) -> dict[str, Any] | None:
        return self._meta

    @property
    def result(self) -> Any:
        return self._exc if self._exc is not None else self._meta["result"]  # type: ignore[index]

    def get(self, timeout: float | None = None, propagate: bool = True) -> R:
        if self._exc is not None and propagate:
            raise self._exc
        return self.result  # type: ignore[no-any-return]
