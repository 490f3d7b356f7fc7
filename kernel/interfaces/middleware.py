"""The middleware contract: per-task features (results, callbacks, retries, chords, signals)
as objects the worker calls around every task message, in one order.

A middleware is registered with a `kernel.specs.MiddlewareSpec` that places it by name
(``before=`` / ``after=`` other middleware). Before-hooks run in that order, before the task
runs; after-hooks run in the reverse order once the message has ended, however it ended: the
task ran (SUCCESS, FAILURE, RETRY, IGNORED) or the message ended without running (REVOKED,
expired, REJECTED, killed at its hard time limit, its process lost). Every ended message goes
through the same after-hooks, so a feature written once holds on every path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from kernel.app import App
    from kernel.message import Request
    from kernel.options import TaskOptions
    from kernel.task import Task


@dataclass
class Call:
    """One task message, as middleware sees it."""

    app: App
    request: Request
    #: None when no task of that name is registered here (the message is then REJECTED).
    task: Task[Any, Any] | None
    #: the task's options (the defaults for an unknown task).
    options: TaskOptions
    args: list[Any]
    kwargs: dict[str, Any]
    embed: dict[str, Any]
    hostname: str
    queue: str
    #: final state once ended: SUCCESS, FAILURE, RETRY, IGNORED, REVOKED, REJECTED.
    state: str = ""
    value: Any = None
    traceback: str | None = None
    runtime: float = 0.0
    #: the task's body ran in this call (False for a message that ended without running).
    ran: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Middleware:
    """Override what you need. Hooks run in the process that ends the message: the pool's
    process for a task that ran, the worker's own for one that ended without running.

    `before` MUST NOT assume `after` will run in the same process. `after` MUST accept every
    final state, including those of a message that never ran (`Call.ran` is False, `args` and
    `kwargs` may be empty when the body could not be decoded).
    """

    name = "middleware"
    #: True for a middleware whose after-hook keeps a promise (results, chord counts, unique
    #: claims, callbacks, retries): when it raises `kernel.errors.ConnectionFailed` it is run
    #: again with backoff (``result_backend_*retr*`` settings); if it still cannot finish,
    #: the remaining after-hooks are skipped and the message is not acknowledged: it goes back
    #: to the broker and the task runs again. Its after-hook MUST therefore be safe to run
    #: again. False (the default) for one whose failure breaks nothing (signals, events,
    #: metrics): it is logged and the others go on.
    critical: ClassVar[bool] = False

    def before(self, call: Call) -> None:
        """Before the task runs (not called for a message that ends without running)."""

    def after(self, call: Call) -> None:
        """Once the message ended; `call.state` and `call.value` are set."""
