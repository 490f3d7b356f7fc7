"""The bootstep contract: a worker component started and stopped in dependency order.

A step names the steps it needs in `requires` (their classes), is started after them and
stopped before them. `start` receives `Deps`: the app, the worker's options, and what each
required step's `start` returned, typed by the step (``deps[ConsumerStep]`` is the
`Consumer`). Steps never set attributes on the worker.

Steps are registered through the ``kernel_bootsteps`` hook, the worker's own as well
(``pool``, ``broker``, ``results``, ``consumer``, ``revocations``, ``liveness``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from kernel.app import App
    from kernel.interfaces.pool import ChildLink

T = TypeVar("T")
V = TypeVar("V")


@dataclass(frozen=True)
class WorkerOptions:
    """The worker's settings after command-line options were applied over the app's config."""

    nodename: str
    pool: str
    concurrency: int
    queues: tuple[str, ...]
    max_tasks_per_child: int | None
    max_memory_per_child: int | None
    prefetch_multiplier: int
    shutdown_timeout: float
    lease_seconds: float
    #: a file touched while the worker is alive (``--heartbeat-file``), or None.
    heartbeat_file: str | None = None
    #: in a consumer process of a process pool (prefork): its line to the pool supervising
    #: it, which gives the process its pool. None in the worker's own process.
    child_link: ChildLink | None = None
    #: how many such processes consume as this one worker, and the worker's own key: they
    #: keep to a per-worker rate limit together (a bucket in the rate-limit store).
    processes: int = 1
    worker_key: str = ""
    #: where a prefork worker's consumer processes count their metrics (prometheus_client's
    #: multiprocess directory), or None: no metrics, or counted in this process.
    metrics_dir: str | None = None


class Deps(Protocol):
    """What a starting step may use."""

    @property
    def app(self) -> App: ...

    @property
    def options(self) -> WorkerOptions: ...

    def __getitem__(self, step: type[Bootstep[V]]) -> V:
        """What `step` returned from `start`. MUST raise `ConfigurationError` for a step not
        in the caller's `requires` (it may not have started yet)."""
        ...


class Bootstep(Generic[T]):
    """``class Heartbeat(Bootstep[None])``: T is what `start` returns to the steps that
    require this one."""

    #: unique name: the node in ``kernel worker --graph``.
    name: ClassVar[str]
    #: steps that MUST be started before this one (and stopped after it).
    requires: ClassVar[tuple[type[Bootstep[Any]], ...]] = ()

    def start(self, deps: Deps) -> T:
        """Start the component; return what dependent steps receive."""
        raise NotImplementedError(f"bootstep {type(self).__name__} must implement start")

    def stop(self) -> None:
        """Stop the component. Called in reverse start order, also after a failed start of a
        later step. MUST NOT raise for a component that is already stopped."""
