"""`GroupResult`: the results of a group's members, in order, as one handle; and the result
tuples Celery writes for saved groups and ``children``.

A result tuple is ``[[id, parent_tuple_or_null], null]`` for a task and
``[[group_id, parent_tuple_or_null], [member tuples...]]`` for a group; a saved group is
``{"result": <its tuple>}`` under ``celery-taskset-meta-<group_id>``, so Celery's
``GroupResult.restore`` reads what kernel saves, and the reverse.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Union

from kernel.errors import TimeoutError
from kernel.result import AsyncResult

if TYPE_CHECKING:
    from kernel.app import App

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


__all__ = ["GroupResult", "from_tuple"]
