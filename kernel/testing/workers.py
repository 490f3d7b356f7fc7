"""Real worker processes for end-to-end tests: ``python -m kernel worker`` (and Celery's, for
interop tests) on the broker under test, each with a log file of its own.

::

    from kernel.testing.workers import Workers

    def test_tasks_run_on_two_workers(tmp_path):
        with Workers("my_tasks:app", broker=URL, results=URL, path=TESTS,
                     logs=tmp_path) as workers:
            workers.start(concurrency=4)
            workers.start(pool="prefork")
            ids = workers.send("my.add", (2, 2), n=100)
            workers.wait_succeeded(ids, timeout=60)

`path` is the directory holding the task module (put first on the workers' PYTHONPATH). The
workers are `ServerProcess` objects: `kill` one to crash it, read its log with `output`, and
`failures` for what it logged as an error.

`running_worker(app)` runs a worker inside the test's own process instead (its threads), for
tests that need no process boundary::

    with running_worker(app, concurrency=2, queues=[queue]):
        assert add.delay(2, 2).get(timeout=10) == 4
"""

from __future__ import annotations

import os
import re
import socket
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from typing_extensions import Self

from kernel import states
from kernel.app import App
from kernel.testing.servers import ServerProcess, stop_all
from kernel.testing.transport import wait_for

if TYPE_CHECKING:
    from kernel.result import AsyncResult
    from kernel.worker import Worker

__all__ = ["CeleryWorkerProcess", "WorkerProcess", "Workers", "celery_workers",
           "running_worker", "wait_succeeded"]

T = TypeVar("T")

#: the start of a worker's log record: ``[2026-12-02 10:11:12,345 ERROR/MainProcess] ...``.
_RECORD = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (?P<level>[A-Z]+)/", re.M)
_TRACEBACK = "Traceback (most recent call last)"
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _on_path(path: Path | str | None) -> str:
    # No empty entry when PYTHONPATH is unset: that would put the working directory first.
    return os.pathsep.join(filter(None, [str(path or ""), os.environ.get("PYTHONPATH", "")]))


class WorkerProcess(ServerProcess):
    """``python -m kernel worker -A <app>`` on `broker` (``KERNEL_BROKER_URL``) and `results`
    (``KERNEL_RESULT_BACKEND``; None leaves the result backend to the app), not started until
    `start`. `args` are more command-line options (``--max-tasks-per-child 2``), `env` more
    environment for the task module."""

    def __init__(self, app: str, *, broker: str, log: Path, results: str | None = None,
                 path: Path | str | None = None, pool: str = "threads", concurrency: int = 1,
                 queues: Sequence[str] = (), nodename: str | None = None,
                 loglevel: str = "warning", args: Sequence[str] = (),
                 env: Mapping[str, str | None] | None = None, cwd: Path | None = None,
                 grace: float = 15.0) -> None:
        self.nodename = nodename or f"w-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
        self.loglevel = loglevel.lower()
        command = [sys.executable, "-m", "kernel", "worker", "-A", app, "-P", pool,
                   "-c", str(concurrency), "-l", loglevel, "-n", self.nodename,
                   *(["-Q", ",".join(queues)] if queues else []), *args]
        super().__init__(command, log=log, cwd=cwd, grace=grace, name=f"worker {self.nodename}",
                         env={"KERNEL_BROKER_URL": broker, "KERNEL_RESULT_BACKEND": results,
                              "PYTHONPATH": _on_path(path), **(env or {})})

    def wait_ready(self, timeout: float = 30.0) -> Self:
        """Return once the worker logged that it is ready (its signal handlers are set and it
        consumes); that line is logged at INFO, so the worker must log at info or debug."""
        if self.loglevel not in ("debug", "info"):
            raise ValueError(f"{self.name} logs at {self.loglevel}, and the ready line is "
                             f"logged at info: start it with loglevel='info'")
        line = f"{self.nodename} ready."
        wait_for(lambda: line in self.output() or not self.running, timeout,
                 f"{self.name} to log {line!r}; {self.where()}", interval=0.05)
        if line not in self.output():
            raise AssertionError(f"{self.name} exited with code {self.returncode} before it "
                                 f"was ready; {self.where()}; its last lines:\n{self.tail()}")
        return self

    def failures(self, level: str = "ERROR") -> list[str]:
        """The records the worker logged at `level` or above (``WARNING`` adds failed tasks),
        and any traceback it printed outside a record (a crash before logging was set up),
        each with the lines that follow it."""
        wanted = set(_LEVELS[_LEVELS.index(level.upper()):])
        text = self.output()
        starts = [m.start() for m in _RECORD.finditer(text)]
        found = []
        for a, b in zip([0, *starts], [*starts, len(text)], strict=True):
            chunk = text[a:b]
            record = _RECORD.match(chunk)
            if record["level"] in wanted if record else _TRACEBACK in chunk:
                found.append(chunk.rstrip())
        return found


class CeleryWorkerProcess(ServerProcess):
    """A real Celery worker, ``python -m celery -A <module> worker``, consuming `queue` with the
    solo pool by default, run in `path` (which holds the module). It has a node name of its own
    (``<queue>@host``: two workers of one name would share a remote-control queue) and starts
    without gossip, mingle and heartbeats, which only slow a test down; `heartbeat` keeps its
    worker-heartbeat events (for monitoring tests)."""

    def __init__(self, module: str, *, path: Path, queue: str, log: Path, pool: str = "solo",
                 loglevel: str = "WARNING", env: Mapping[str, str | None] | None = None,
                 heartbeat: bool = False) -> None:
        self.nodename = f"{queue}@{socket.gethostname()}"
        super().__init__(
            [sys.executable, "-m", "celery", "-A", module, "worker", "-P", pool, "-Q", queue,
             "-n", f"{queue}@%h", "--without-gossip", "--without-mingle",
             *([] if heartbeat else ["--without-heartbeat"]), "-l", loglevel],
            log=log, cwd=path, env={"PYTHONPATH": _on_path(path), **(env or {})},
            grace=20.0, name=f"celery worker {queue}")


def wait_succeeded(app: App, tasks: Iterable[AsyncResult[Any] | str], timeout: float,
                   describe: Callable[[], str] | None = None) -> None:
    """Wait until every task (an AsyncResult or a task id) has the state SUCCESS in `app`'s
    result store. Fails at once when one ends otherwise (FAILURE, REVOKED, REJECTED), with its
    traceback, and after `timeout` seconds with the tasks still missing and their states;
    `describe()` adds what the caller knows (where the worker logs are)."""
    ids = [task if isinstance(task, str) else task.id for task in tasks]
    pending = dict.fromkeys(ids)
    ended: list[str] = []

    def settled() -> bool:
        for task_id in list(pending):
            result = app.AsyncResult(task_id)
            state = result.state
            if state == states.SUCCESS:
                del pending[task_id]
            elif state in states.READY_STATES:
                ended.append(f"task {task_id} ended {state}: "
                             f"{result.traceback or result.result!r}")
                return True
        return not pending

    def context() -> str:
        return f"; {describe()}" if describe else ""

    try:
        wait_for(settled, timeout, "the tasks to succeed", interval=0.1)
    except AssertionError:
        missing = ", ".join(f"{task_id} {app.AsyncResult(task_id).state}"
                            for task_id in list(pending)[:10])
        more = f" and {len(pending) - 10} more" if len(pending) > 10 else ""
        raise AssertionError(f"{len(pending)} of {len(ids)} tasks did not succeed within "
                             f"{timeout}s: {missing}{more}{context()}") from None
    if ended:
        raise AssertionError(ended[0] + context())


class Workers:
    """Worker processes a test starts on one broker, consuming a queue of their own, and the
    client App (`client`) that sends them tasks; `close` (or leaving the ``with`` block) stops
    them all, warm first, within one shared grace.

    Each worker logs to ``<logs>/worker-<n>.log`` and is named ``w<n>@<queue>``. `env` is
    given to every worker; `client_config` is more configuration for the client.
    """

    def __init__(self, app: str, *, broker: str, logs: Path, results: str | None = None,
                 path: Path | str | None = None, queue: str | None = None,
                 env: Mapping[str, str | None] | None = None,
                 client_config: Mapping[str, Any] | None = None, grace: float = 15.0) -> None:
        self.app = app
        self.broker = broker
        self.results = results
        self.logs = logs
        self.path = path
        self.queue = queue or f"workers-{uuid.uuid4().hex[:12]}"
        self.env = dict(env or {})
        self.grace = grace
        self.processes: list[WorkerProcess] = []
        self.client = App("test-client", broker=broker, config={
            "task_default_queue": self.queue, "result_backend": results,
            **(client_config or {})})

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def start(self, pool: str = "threads", concurrency: int = 2, *,
              env: Mapping[str, str | None] | None = None, args: Sequence[str] = (),
              loglevel: str = "warning") -> WorkerProcess:
        """Start one more worker on the queue (not waiting for it to be ready: what is sent
        meanwhile waits in the broker)."""
        n = len(self.processes)
        worker = WorkerProcess(
            self.app, broker=self.broker, results=self.results, path=self.path,
            log=self.logs / f"worker-{n}.log", pool=pool, concurrency=concurrency,
            queues=[self.queue], nodename=f"w{n}@{self.queue}", loglevel=loglevel, args=args,
            env={**self.env, **(env or {})}, grace=self.grace)
        self.processes.append(worker)
        return worker.start()

    def send(self, name: str, args: Sequence[Any] = (), n: int = 1, **options: Any) -> list[str]:
        """Send `n` calls of task `name` to the queue in one round trip; their ids. `options`
        as for ``App.send_many`` (countdown, priority, ...)."""
        sent = self.client.send_many([(name, args, {}) for _ in range(n)], queue=self.queue,
                                     **options)
        return [result.id for result in sent]

    def describe(self) -> str:
        """For failure messages: which workers live, what they logged as errors, where their
        logs are. Subclasses add what their broker knows (what is waiting, what is held)."""
        alive = [worker.running for worker in self.processes]
        errors = [f"worker {n} logged: {found[0][:500]}"
                  for n, worker in enumerate(self.processes) if (found := worker.failures())]
        return "; ".join([f"workers alive {alive}", *errors, f"worker logs in {self.logs}"])

    def wait(self, predicate: Callable[[], T], timeout: float, what: str) -> T:
        """`wait_for` whose failure also says what `describe` says."""
        try:
            return wait_for(predicate, timeout, what, interval=0.1)
        except AssertionError as exc:
            raise AssertionError(f"{exc} ({self.describe()})") from None

    def wait_succeeded(self, tasks: Iterable[AsyncResult[Any] | str], timeout: float) -> None:
        """`wait_succeeded` through the client, failures saying what `describe` says."""
        wait_succeeded(self.client, tasks, timeout, self.describe)

    def close(self) -> None:
        stop_all(self.processes, self.grace)
        self.client.close()


@contextmanager
def running_worker(app: App, *, pool: str = "threads", concurrency: int = 2,
                   shutdown_timeout: float = 5.0, **options: Any) -> Iterator[Worker]:
    """A worker of `app` running in this process (started, consuming) for the block, stopped
    warm after it. `options` are `kernel.worker.Worker`'s (queues, prefetch_multiplier, ...)."""
    from kernel.worker import Worker

    worker = Worker(app, pool=pool, concurrency=concurrency, shutdown_timeout=shutdown_timeout,
                    **options)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


@contextmanager
def celery_workers(directory: Path) -> Iterator[Callable[[str, str, str], CeleryWorkerProcess]]:
    """Start real Celery workers (solo pool) from module source for the block: call what it
    gives with ``(module name, source, queue)``; the module is written to `directory`, its log
    is ``<module>.log`` there. Every worker is stopped (SIGTERM, then SIGKILL) at the end."""
    started: list[CeleryWorkerProcess] = []

    def start(module: str, source: str, queue: str) -> CeleryWorkerProcess:
        (directory / f"{module}.py").write_text(source)
        started.append(CeleryWorkerProcess(module, path=directory, queue=queue,
                                           log=directory / f"{module}.log"))
        return started[-1].start()

    try:
        yield start
    finally:
        stop_all(started)
