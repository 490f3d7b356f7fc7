"""Per-task middleware: features (results, callbacks, retries, limits, metrics) as modules.

Before-hooks run in ``order``; after-hooks in reverse. A middleware that raises is logged and
skipped; it never fails the task or the worker.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kernel.app import App
    from kernel.message import Request
    from kernel.task import Task

log = logging.getLogger("kernel.worker")


@dataclass
class Call:
    """One task run, as middleware sees it."""

    app: App
    request: Request
    task: Task[Any, Any]
    args: list[Any]
    kwargs: dict[str, Any]
    embed: dict[str, Any]
    hostname: str
    queue: str
    #: final state once run: SUCCESS, FAILURE, REVOKED, ...
    state: str = ""
    value: Any = None
    traceback: str | None = None
    runtime: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class Middleware:
    """Override what you need. Hooks run in the process that runs the task."""

    name = "middleware"

    def before(self, call: Call) -> None:
        """Before the task runs."""

    def after(self, call: Call) -> None:
        """After it ran (or was skipped); `call.state` and `call.value` are set."""


class Pipeline:
    def __init__(self, middleware: Sequence[Middleware]) -> None:
        self.middleware = list(middleware)
        self._reversed = list(reversed(self.middleware))

    def before(self, call: Call) -> None:
        for mw in self.middleware:
            try:
                mw.before(call)
            except Exception:
                log.exception("middleware %s failed before task %s", mw.name, call.request.id)

    def after(self, call: Call) -> None:
        for mw in self._reversed:
            try:
                mw.after(call)
            except Exception:
                log.exception("middleware %s failed after task %s", mw.name, call.request.id)
