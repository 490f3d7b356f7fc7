"""The handles that read results: `AsyncResult` (one task), `EagerResult` (a task run here),
`GroupResult` (a group's members, in order); and the result tuples Celery writes for saved
groups and ``children``.

A result tuple is ``[[id, parent_tuple_or_null], null]`` for a task and
``[[group_id, parent_tuple_or_null], [member tuples...]]`` for a group; a saved group is
``{"result": <its tuple>}`` under ``celery-taskset-meta-<group_id>`` (`kernel.records`), so
Celery's ``GroupResult.restore`` reads what kernel saves, and the reverse.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar, Union

from kernel import states
from kernel.errors import ResultNotStored, TimeoutError
from kernel.records import exception_from_dict, exception_to_dict, now_iso

if TYPE_CHECKING:
    from kernel.app import App

R = TypeVar("R")


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


AnyResult = Union[AsyncResult[Any], "GroupResult"]


class GroupResult:
    """The members' results of a group (or a chord's header); ``join()`` waits for all of them
    and returns their values in the group's order."""

    def __init__(self, id: str, results: list[AnyResult], app: App,
                 parent: AnyResult | None = None) -> None:
        self.id = id
        self.results = results
        self.app = app
        self.parent = parent

    def __repr__(self) -> str:
        return f"<GroupResult {self.id} [{', '.join(r.id for r in self.results)}]>"

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[AnyResult]:
        return iter(self.results)

    def __getitem__(self, index: int) -> AnyResult:
        return self.results[index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GroupResult) and (other.id, other.results) == (
            self.id, self.results)

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def children(self) -> list[AnyResult]:
        return self.results

    # ------------------------------------------------------------------ state

    def completed_count(self) -> int:
        """How many members succeeded."""
        return sum(1 for r in self.results if r.successful())

    def ready(self) -> bool:
        """Every member has finished (succeeded, failed or was revoked)."""
        return all(r.ready() for r in self.results)

    def successful(self) -> bool:
        return all(r.successful() for r in self.results)

    def failed(self) -> bool:
        return any(r.failed() for r in self.results)

    def waiting(self) -> bool:
        return not self.ready()

    # ------------------------------------------------------------------ values

    def join(self, timeout: float | None = None, propagate: bool = True) -> list[Any]:
        """Wait for every member and return their values in order; the first failure in
        order is raised when `propagate`; `kernel.TimeoutError` after `timeout` s in all."""
        deadline = None if timeout is None else time.monotonic() + timeout
        values = []
        for result in self.results:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                values.append(result.get(timeout=left, propagate=propagate))
            except TimeoutError:
                raise TimeoutError(
                    f"group {self.id}: {self.completed_count()} of {len(self)} members done "
                    f"within {timeout} s") from None
        return values

    get = join

    def revoke(self, terminate: bool = False) -> None:
        for result in self.results:
            result.revoke(terminate=terminate)

    def forget(self) -> None:
        for result in self.results:
            result.forget()
        self.delete()

    # ------------------------------------------------------------------ saving

    def as_tuple(self) -> list[Any]:
        parent = None if self.parent is None else self.parent.as_tuple()
        return [[self.id, parent], [r.as_tuple() for r in self.results]]

    def save(self) -> GroupResult:
        """Keep the member ids in the result store, so `GroupResult.restore(id)` finds them
        from any process (for as long as results are kept)."""
        self.app.backend.save_group(self.id, {"result": self.as_tuple()})
        return self

    def delete(self) -> None:
        self.app.backend.delete_group(self.id)

    @classmethod
    def restore(cls, id: str, app: App) -> GroupResult | None:
        """The saved group `id`, or None if none was saved (or it expired)."""
        meta = app.backend.restore_group(id)
        if meta is None:
            return None
        found = from_tuple(meta["result"], app)
        return found if isinstance(found, GroupResult) else None


def from_tuple(data: Any, app: App) -> AnyResult:
    """The result handle for a result tuple (see the module docstring)."""
    (result_id, parent), members = data
    parent_result = None if parent is None else from_tuple(parent, app)
    if members is not None:
        return GroupResult(result_id, [from_tuple(m, app) for m in members], app, parent_result)
    result: AsyncResult[Any] = AsyncResult(result_id, app)
    result.parent = parent_result
    return result

