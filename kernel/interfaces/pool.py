"""The pool contract: where tasks execute.

A pool receives `Job`s from the worker's consumer and reports one `Outcome` per job through the
callback given to `submit`. The runner (what turns a job into an outcome) is given at `start`.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kernel.interfaces.transport import Delivery


@dataclass(frozen=True)
class PoolCapabilities:
    #: `SoftTimeLimitExceeded` is raised inside a running task at its soft limit.
    soft_time_limit: bool = False
    #: a task past its hard limit is stopped (killed or cancelled) and reported TIMEOUT.
    hard_time_limit: bool = False
    #: `terminate_job` stops a running task.
    terminate: bool = False
    #: `max_tasks_per_child` / `max_memory_per_child` are honoured.
    recycle_children: bool = False
    #: `grow` / `shrink` change concurrency at run time.
    resize: bool = False
    #: tasks run in separate processes (a crash in a task does not take the worker down).
    isolated: bool = False
    #: the worker may keep one job per slot queued in the pool (submitted while every slot is
    #: busy): the pool starts it the moment a slot frees, without waiting for the worker to
    #: settle the last one. Worth it where handing a job over is slow (a pipe to a process).
    #: Such a pool MUST implement `withdraw`.
    queue_ahead: bool = False
    #: each of the pool's processes runs a consumer of its own, fetching, running and settling
    #: on its own broker connection, while the worker's process only supervises them: the
    #: worker calls `start_consumers` instead of `start` and submits nothing. Such a pool MUST
    #: implement `start_consumers`.
    consumers: bool = False
    #: slots are green threads of the worker's own process (gevent, eventlet): thousands cost
    #: little, but they share one CPU, so the worker holds one message per slot, and beyond
    #: that at most one more per slot as the prefetch budget allows, never concurrency x
    #: prefetch multiplier (a worker of 1,000 green slots would take a whole backlog from
    #: the other workers).
    green: bool = False
    #: the pool runs this many tasks at once whatever concurrency it is given (solo: 1); the
    #: worker shows and prefetches for that many.
    fixed_concurrency: int | None = None


@dataclass
class Job:
    """One task to run. MUST be picklable (prefork sends it to a child)."""

    id: str
    name: str
    payload: Any
    soft_time_limit: float | None = None
    hard_time_limit: float | None = None
    is_async: bool = False


class OutcomeKind(enum.Enum):
    #: the runner finished and said what to do with the message.
    FINISHED = "finished"
    #: the process or thread running the job died before it finished.
    LOST = "lost"
    #: the job passed its hard time limit and was stopped.
    TIMEOUT = "timeout"
    #: the job was stopped by `terminate_job`.
    TERMINATED = "terminated"


@dataclass
class Outcome:
    job_id: str
    kind: OutcomeKind
    #: the runner's return value for FINISHED; a description otherwise.
    value: Any = None
    #: pid of the process that ran (or was running) the job.
    pid: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


Runner = Callable[[Job], Any]
OnDone = Callable[[Outcome], None]


class ChildLink(ABC):
    """A consumer process's line to the pool that supervises it (pools with the `consumers`
    capability). Through the pool it gives (`pool`), the process tells the supervisor which
    job it runs, so that the supervisor can report one the process never ends itself."""

    @abstractmethod
    def holding(self, deliveries: Sequence[Delivery]) -> None:
        """This process now holds `deliveries` (with those it settled since the last call, if
        the caller likes: giving back a settled one changes nothing). If the process dies, the
        pool passes ``(tag, queue, delivery_count)`` of each to `on_gone`, so they can be given
        back at once rather than when their leases run out."""

    @abstractmethod
    def alive(self) -> None:
        """This process is alive and not stuck (its liveness check passed just now)."""

    @abstractmethod
    def on_stop(self, callback: Callable[[], None]) -> None:
        """Call `callback` in this process before the pool stops it with its job (the job
        passed its hard limit, or is terminated), when the process can still run it: the
        consumer gives back the messages it holds, so that none waits for a lease."""

    def index(self) -> int:
        """This process's number among the pool's processes, 1 to concurrency; a process that
        replaces one takes the lowest number free (Celery's ``%i`` in log file names)."""
        return 1

    def standing(self) -> list[Any]:
        """The standing questions (`Pool.ask_consumers` with ``standing``) asked before this
        process started: the process MUST answer them before it consumes."""
        return []

    @abstractmethod
    def pool(self) -> Pool:
        """The pool for this process's consumer: one job at a time, each reported through
        this link with the pickled job as its payload; soft limits raised in the job; at a hard
        limit and on `terminate_job` the job is reported (TIMEOUT, TERMINATED) and the
        supervising pool stops this process; the process is retired by that pool's
        max_tasks_per_child and max_memory_per_child."""


class ChildMain(ABC):
    """What each consumer process runs. MUST be picklable: it is sent to every process."""

    @abstractmethod
    def start(self, link: ChildLink) -> None:
        """Start consuming, with the pool `link.pool` gives, and return; the process's main
        thread then runs that pool's jobs."""

    @abstractmethod
    def stop(self, warm: bool) -> None:
        """Stop consuming; warm: let the running job finish (up to the shutdown timeout).
        Whatever the job's state, every message this process holds MUST be settled or given
        back before it returns: the process exits right after."""

    def answer(self, question: Any) -> Any:
        """Answer `question`, sent by `Pool.ask_consumers` (remote control: what this process
        holds, a new rate limit). Runs on a thread of its own, while a job may run; MUST
        return plain data (it crosses a pipe) and MUST NOT raise."""
        return None


class Pool(ABC):
    """An execution pool.

    Guarantees: every submitted job gets exactly one `on_done` call, whatever happens to the
    process or thread running it (finished, lost, timed out, terminated) — unless the pool is
    stopped with `wait=False`, in which case unfinished jobs get LOST outcomes. `on_done` may be
    called from any thread and MUST NOT be called while a pool lock is held.
    """

    capabilities: PoolCapabilities = PoolCapabilities()

    def __init__(
        self,
        concurrency: int,
        *,
        max_tasks_per_child: int | None = None,
        max_memory_per_child: int | None = None,
    ) -> None:
        """Raises ValueError, with a sentence, when `concurrency` is not a positive integer."""
        self._check_positive("concurrency", concurrency)
        self.concurrency = concurrency
        self.max_tasks_per_child = max_tasks_per_child
        #: KiB of resident memory after which a child is replaced.
        self.max_memory_per_child = max_memory_per_child

    def _check_positive(self, name: str, value: int) -> None:
        """ValueError unless `value` (the pool's setting `name`) is a positive integer."""
        if not isinstance(value, int) or value < 1:
            raise ValueError(
                f"{type(self).__name__} {name} must be a positive integer, got {value!r}"
            )

    @abstractmethod
    def start(self, runner: Runner) -> None:
        """Start executing. `runner(job)` runs in the pool's process/thread for each job; for
        process pools it MUST be picklable. Process pools MUST fork before the caller opens any
        connection or thread that could cross a fork (or use a fork server)."""

    @abstractmethod
    def submit(self, job: Job, on_done: OnDone) -> None:
        """Queue `job`. MUST NOT block on the job's execution."""

    @abstractmethod
    def stop(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop. `wait=True`: let running jobs finish (up to `timeout`), then stop; `wait=False`:
        stop at once, reporting unfinished jobs as LOST."""

    @property
    @abstractmethod
    def active(self) -> int:
        """Jobs submitted and not yet reported."""

    def start_consumers(self, child: ChildMain, on_done: OnDone,
                        on_gone: Callable[[list[tuple[Any, str, int]]], None]) -> None:
        """Start `concurrency` processes, each running `child`, and keep that many running.
        A job a process's pool (`ChildLink.pool`) started and did not end gets exactly one
        `on_done` call, its ``extra["payload"]`` the pickled job: LOST when the process died,
        TIMEOUT when the process could not stop it at its hard limit and the pool did (the
        call made before the process is killed). When a process ends
        without giving back what it held, `on_gone` gets its last `ChildLink.holding`, after
        the process's own job was reported. `stop(wait=True)`
        stops every process warm, `stop(wait=False)` cold; `active` counts the jobs running
        in them. Pools with the `consumers` capability only."""
        raise NotImplementedError(f"{type(self).__name__} does not run consumer processes")

    def ask_consumers(self, question: Any, timeout: float, *, standing: bool = False,
                      ) -> list[Any]:
        """Every consumer process's `ChildMain.answer` to `question`, those that answered
        within `timeout` seconds (a busy process answers too: its pipe has a thread of its
        own). `standing`: a change every consumer process MUST also get that starts later
        (a grown pool, a replaced process), before its first job, in the order asked.
        Pools with the `consumers` capability only."""
        raise NotImplementedError(f"{type(self).__name__} does not run consumer processes")

    def consumers_processed(self) -> int:
        """Jobs the consumer processes ended so far, those that exited included (for the
        worker's heartbeat). Pools with the `consumers` capability only."""
        raise NotImplementedError(f"{type(self).__name__} does not run consumer processes")

    def consumers_alive(self, within: float) -> bool:
        """Every consumer process said `ChildLink.alive` in the last `within` seconds (or
        started less than that ago). Pools with the `consumers` capability only."""
        raise NotImplementedError(f"{type(self).__name__} does not run consumer processes")

    def terminate_job(self, job_id: str) -> bool:
        """Stop a running job; True if it was running here."""
        return False

    def withdraw(self, job_ids: Collection[str] | None = None) -> list[Job]:
        """Take back jobs submitted but not started (all of them, or those in `job_ids`) and
        return them; a withdrawn job gets no `on_done` call and no longer counts in `active`.
        How a worker gives queued jobs back at shutdown, or drops a revoked one."""
        return []

    def grow(self, n: int = 1) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot grow")

    def shrink(self, n: int = 1) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot shrink")

    def restart(self) -> None:
        """Replace every process, each after its running job (warm), keeping `concurrency`:
        the new ones import the task modules afresh (remote ``pool_restart``). Process pools
        only."""
        raise NotImplementedError(f"{type(self).__name__} runs no processes to restart; "
                                  f"restart the worker")

    def info(self) -> dict[str, Any]:
        """Facts for `stats` and the banner (implementation, concurrency, processes)."""
        return {"implementation": type(self).__name__, "max-concurrency": self.concurrency}
