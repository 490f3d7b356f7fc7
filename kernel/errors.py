"""Every error kernel raises on purpose, each with a sentence a user can act on.

Errors that cross the wire (a task's own exception) are rebuilt by `kernel.result`; the classes
here are raised by kernel itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches


class KernelError(Exception):
    """Base class of every error kernel raises on purpose."""


# ---------------------------------------------------------------- configuration and plugins


class ConfigurationError(KernelError):
    """The configuration asks for something that cannot work."""


class PluginError(KernelError):
    """A plugin could not be loaded, validated or registered."""


class PluginConflictError(PluginError):
    """Two plugins claim one capability name."""

    def __init__(self, kind: str, name: str, first: str, second: str) -> None:
        super().__init__(
            f"two plugins provide the {kind} {name!r}: {first} and {second}; "
            f"uninstall one of them or disable one with -p no:<plugin>"
        )


class CapabilityNotFound(ConfigurationError):
    """The configuration selects a capability no installed plugin provides."""

    def __init__(
        self,
        kind: str,
        name: str,
        known: Iterable[str],
        hint: str | None = None,
        failed: str | None = None,
    ) -> None:
        known = sorted(known)
        parts = [f"no {kind} for {name!r}"]
        if failed:
            parts.append(f"the plugin that provides it failed to load: {failed}")
        elif hint:
            parts.append(hint)
        close = get_close_matches(name, known, n=1)
        if close:
            parts.append(f"did you mean {close[0]!r}?")
        if known:
            parts.append(f"available: {', '.join(known)}")
        super().__init__("; ".join(parts))


class MissingCapability(ConfigurationError):
    """A plugin was selected that cannot keep a guarantee the configuration needs."""


class MissingDependency(ConfigurationError):
    """A feature needs a package that is not installed; the message names the extra that
    installs it (``pip install 'kernel[solar]'``)."""

    def __init__(self, feature: str, package: str, extra: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(f"{feature} needs the {package} package, which is not installed: "
                         f"pip install 'kernel[{extra}]'")


class RoutingError(ConfigurationError):
    """A task cannot be routed: a router raised or answered nonsense, or the queue or exchange
    it names is not declared; the sentence names the task and the setting."""


class BeatEntryError(ConfigurationError):
    """A periodic task's entry beat cannot keep: the sentence names the entry and the field,
    and beat does not start with it."""

    def __init__(self, entry: str, field: str, problem: str) -> None:
        self.entry, self.field = entry, field
        super().__init__(f"periodic task {entry!r}: {field} {problem}")


class UnknownEntry(ConfigurationError):
    """A change asked for a periodic task the schedule store does not have."""

    def __init__(self, entry: str, known: Iterable[str]) -> None:
        close = get_close_matches(entry, list(known), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        super().__init__(f"no periodic task is named {entry!r}{hint} (see kernel beat list)")


# ---------------------------------------------------------------- wire and messages


class MessageError(KernelError):
    """A message cannot be understood; it is rejected, never run."""


class ContentDisallowed(MessageError):
    """The message uses a serializer the worker does not accept."""

    def __init__(self, content_type: str, accepted: Iterable[str]) -> None:
        super().__init__(
            f"refusing content type {content_type!r}: accepted are {', '.join(sorted(accepted))}; "
            f"add it to accept_content if you trust every producer on this broker"
        )


class CompressionDisallowed(MessageError):
    """The message uses a compression the worker does not accept (``accept_compression``)."""

    def __init__(self, compression: str, accepted: Iterable[str]) -> None:
        super().__init__(
            f"refusing compression {compression!r}: accepted are "
            f"{', '.join(sorted(accepted)) or 'none'}; add it to accept_compression if you "
            f"trust every producer on this broker"
        )


class DecodeError(MessageError):
    """The body or envelope is not valid for its declared content type."""


class UnknownTask(MessageError):
    """The message names a task this worker has not registered."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        close = get_close_matches(name, list(known), n=1)
        hint = f" did you mean {close[0]!r}?" if close else ""
        super().__init__(
            f"task {name!r} is not registered in this worker;{hint} "
            f"make sure the module defining it is imported by the app given to -A"
        )


# ---------------------------------------------------------------- connections


class ConnectionFailed(KernelError):
    """A broker or result store cannot be reached."""


class BrokerUnreachable(ConnectionFailed):
    """A worker spent its attempts to reach the broker (``broker_connection_max_retries``), or
    was told not to retry (``broker_connection_retry_on_startup = False``)."""


class WorkerSetupError(KernelError):
    """A worker cannot start as its options ask: a pid file another worker holds or that
    cannot be written, a log file that cannot be opened, a user, group or directory to switch
    to that does not exist."""


class ResultRefused(KernelError):
    """A result store refused a record it cannot keep: larger than it holds, or holding a value
    its format has no place for (an integer over 64 bits in BSON); the worker records the task
    as FAILURE with this error instead, without the task's arguments (they may be the cause)."""


class ResultTooLarge(ResultRefused):
    """A result store refused a record as larger than it can keep (a Memcached value over the
    server's item size)."""


class PublishError(KernelError):
    """Tasks sent in an ``app.pipelined()`` block were not published: `task_ids` lists them."""

    def __init__(self, task_ids: list[str], cause: BaseException | None) -> None:
        self.task_ids = list(task_ids)
        shown = ", ".join(self.task_ids[:3]) + (", ..." if len(self.task_ids) > 3 else "")
        super().__init__(
            f"{len(self.task_ids)} task(s) sent in app.pipelined() were not published ({shown}): "
            f"{cause}; nothing after the first failure was sent: send these again once the "
            f"broker is back (the batch that failed may have reached the broker as the connection "
            f"broke)")
        self.__cause__ = cause


# ---------------------------------------------------------------- tasks and results


class TaskError(KernelError):
    """Base class for errors about one task's run."""


class TimeoutError(TaskError):  # noqa: A001 - deliberate: kernel.TimeoutError for result waits
    """No result arrived within the time given to `AsyncResult.get`."""


class SoftTimeLimitExceeded(TaskError):
    """Raised inside a task when its soft time limit passes; catch it to clean up."""


class TimeLimitExceeded(TaskError):
    """The task ran past its hard time limit and its process was killed."""


class WorkerLostError(TaskError):
    """The process running the task died before the task finished."""


class TaskRevokedError(TaskError):
    """The task was revoked (or expired) and will not run."""


class Retry(KernelError):
    """Raised by `Task.retry`: this run ends and the task was sent again (same id, retries+1).

    Not a failure: the worker records state RETRY. Always ``raise self.retry(...)``.
    """

    def __init__(self, exc: BaseException | None = None, when: float | None = None) -> None:
        self.exc = exc
        self.when = when
        reason = f"{type(exc).__name__}: {exc}" if exc is not None else "retry requested"
        super().__init__(f"retry in {when:.2f} s ({reason})" if when is not None else reason)


class ChordError(TaskError):
    """A task in the chord's header failed, so the body never ran; the message names the
    failed task (``Dependency <id> raised ...``): look at its result for the cause."""


class Ignore(KernelError):
    """Raised inside a task to end this run without a result, callbacks or chord counting
    (`Task.replace` raises it once the replacement is sent)."""


class MaxRetriesExceededError(TaskError):
    """The task asked to retry more often than its max_retries allows."""


class RemoteError(TaskError):
    """Stand-in for a task's exception whose type cannot be imported where the result is read.

    `exc_type` and `exc_module` name the original type.
    """

    exc_type: str = "Exception"
    exc_module: str = "builtins"


class ResultNotStored(KernelError):
    """The task was sent with ignore_result, so there is nothing to wait for."""
