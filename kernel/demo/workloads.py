"""What the demo sends, and how it judges each outcome.

A `Workload` submits its share of the run and returns one `Tracked` per result to wait for.
`TaskCalls` sends plain calls of one task in a single `App.send_many` batch. A workload built on
the canvas (a chain, a group) fits the same shape: it submits through the canvas and returns a
`Tracked` for each result it produces; add it to `DEFAULT_WORKLOADS` with a weight.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from kernel import states
from kernel.demo import tasks

if TYPE_CHECKING:
    from kernel.app import App
    from kernel.task import Task


@dataclass(frozen=True)
class Tracked:
    """One result the demo waits for."""

    task_id: str
    workload: str
    #: unix time just before the message was published.
    submitted: float
    #: what a success must return, or the exception type a failure must carry.
    expected: Any
    expect_failure: bool = False

    def judge(self, record: dict[str, Any]) -> str | None:
        """None when the stored record is what this call should have produced, else why not."""
        status, value = record.get("status"), record.get("result")
        if self.expect_failure:
            if status != states.FAILURE:
                return f"{self.task_id}: expected a {self.expected} failure, got {status}"
            raised = value.get("exc_type") if isinstance(value, dict) else None
            if raised != self.expected:
                return f"{self.task_id}: expected {self.expected}, raised {raised}"
            return None
        if status != states.SUCCESS:
            error = value.get("exc_type") if isinstance(value, dict) else value
            return f"{self.task_id}: {status} ({error})"
        if value != self.expected:
            return f"{self.task_id}: returned {value!r}, expected {self.expected!r}"
        return None


class Workload(Protocol):
    @property
    def label(self) -> str:
        """The name shown in the summary."""
        ...

    @property
    def weight(self) -> int:
        """This workload's share of the run, relative to the others' weights."""
        ...

    def submit(self, app: App, numbers: Sequence[int]) -> list[Tracked]:
        """Send one unit of work per number; return what to wait for."""
        ...


@dataclass(frozen=True)
class TaskCalls:
    """Calls of one task, each built from a number, sent in one batch."""

    label: str
    weight: int
    task: Task[Any, Any]
    args: Callable[[int], list[Any]]
    expected: Callable[[int], Any]
    expect_failure: bool = False

    def submit(self, app: App, numbers: Sequence[int]) -> list[Tracked]:
        if not numbers:
            return []
        submitted = time.time()
        results = app.send_many([(self.task.name, self.args(n), {}) for n in numbers])
        return [Tracked(r.id, self.label, submitted, self.expected(n), self.expect_failure)
                for n, r in zip(numbers, results, strict=True)]


DEFAULT_WORKLOADS: tuple[Workload, ...] = (
    TaskCalls("add", 6, tasks.add, lambda n: [n, n], lambda n: 2 * n),
    TaskCalls("async add", 3, tasks.add_async, lambda n: [n, 1], lambda n: n + 1),
    TaskCalls("fails on purpose", 1, tasks.fail, lambda n: [n],
              lambda n: tasks.DemoFailure.__name__, expect_failure=True),
)


def share_out(numbers: Sequence[int], workloads: Sequence[Workload]) -> list[list[int]]:
    """Deal numbers to workloads in proportion to their weights, interleaved (so every batch
    mixes every kind of work)."""
    slots = [i for i, w in enumerate(workloads) for _ in range(w.weight)]
    shares: list[list[int]] = [[] for _ in workloads]
    for n in numbers:
        shares[slots[n % len(slots)]].append(n)
    return shares
