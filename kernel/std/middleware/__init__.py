"""The kernel's own per-task features, registered like any plugin's (std plugin
``middleware``), one middleware a module: results, callbacks, automatic retries, unique claims,
task signals and task events.

Their places, outermost first: events, signals, callbacks, (the canvas plugin's chord counting),
results, unique, autoretry. After-hooks run innermost first, so: autoretry may turn a FAILURE
into a RETRY before anything else sees it; a unique claim is freed before the result shows (a
client that saw the result may send the task again at once); results are stored before the
chord counts and callbacks are sent (so their workers can read it); signals, then the task's
event, come last (a monitor that sees task-succeeded can read the result).
"""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import Lazy, MiddlewareSpec, hookimpl


@hookimpl
def kernel_middleware() -> Iterable[MiddlewareSpec]:
    yield MiddlewareSpec("events", Lazy("kernel.std.middleware.events:SendEvents"),
                         before=("signals",))
    yield MiddlewareSpec("signals", Lazy("kernel.std.middleware.signals:SendSignals"),
                         before=("callbacks",))
    yield MiddlewareSpec("callbacks", Lazy("kernel.std.middleware.callbacks:SendCallbacks"),
                         before=("chord", "results"))
    yield MiddlewareSpec("results", Lazy("kernel.std.middleware.results:StoreResults"))
    yield MiddlewareSpec("unique", Lazy("kernel.std.middleware.unique:ReleaseUnique"),
                         after=("results",))
    yield MiddlewareSpec("autoretry", Lazy("kernel.std.middleware.autoretry:AutoRetry"),
                         after=("unique",))
