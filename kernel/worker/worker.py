"""The worker: a blueprint of bootsteps, signal handling and the start-up banner.

With a pool whose processes consume on their own (prefork), the worker's process only
supervises: each child process runs a worker of its own (`ConsumerProcess`: the blueprint, a
consumer of concurrency 1 on its own connections), and this process settles what a child
began and never ended (`Orphans.adopt`). Measured in docs/benchmarks.md: handing every task
over from one consuming process cost that process as much as running the task, so two
children drained slower than one process alone.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from kernel.errors import ConfigurationError
from kernel.interfaces.bootstep import WorkerOptions
from kernel.interfaces.pool import ChildLink, ChildMain, Outcome, Pool
from kernel.parsing import mask_url
from kernel.supervision import FATAL
from kernel.worker.autoscale import Autoscaler
from kernel.worker.blueprint import Blueprint
from kernel.worker.consumer import Consumer, prefetch_bounds
from kernel.worker import connection, liveness
from kernel.worker.execute import Executor
from kernel.worker.liveness import Heartbeat
from kernel.worker.logs import LogSetup
from kernel.worker.mailbox import Mailbox, Presence
from kernel.worker.metrics import MetricsServer, count_here, shared_directory
from kernel.worker.orphans import Orphans
from kernel.worker import remote
from kernel.worker.steps import ConsumerStep, default_concurrency

if TYPE_CHECKING:
    from kernel.app import App
    from kernel.events.metrics import EventMetrics

log = logging.getLogger("kernel.worker")

#: the exit status of a worker that stopped because one of its threads kept failing.
EXIT_FATAL = 1
#: heartbeat periods a consumer child may miss before the worker counts as stuck.
CHILD_SILENCE = 3
#: seconds between two looks at the broker by a process that supervises consumer children
#: (they fetch on their own connections, and one that gives up on the broker is replaced by
#: another that tries again: this process decides when the worker gives up).
BROKER_WATCH = 5.0
#: seconds a warm shutdown waits for consumer children beyond their own shutdown timeout
#: (they give their prefetched messages back and flush their acks).
CHILD_STOP_MARGIN = 5.0


class Worker:
    """``Worker(app, pool="prefork", concurrency=2).run()``; options default to the app's config."""

    def __init__(
        self,
        app: App,
        *,
        pool: str | None = None,
        concurrency: int | None = None,
        queues: Sequence[str] | None = None,
        max_tasks_per_child: int | None = None,
        max_memory_per_child: int | None = None,
        prefetch_multiplier: int | None = None,
        shutdown_timeout: float | None = None,
        nodename: str | None = None,
        loglevel: str = "INFO",
        logs: LogSetup | None = None,
        heartbeat_file: str | None = None,
        child_link: ChildLink | None = None,
        processes: int = 1,
        worker_key: str = "",
        metrics_port: int | None = None,
        metrics_host: str = "127.0.0.1",
        metrics_dir: str | None = None,
        autoscale: tuple[int, int] | None = None,
    ) -> None:
        conf = app.conf
        self.app = app
        #: where and how this worker logs (``--logfile``, ``--log-format``).
        self.logs = logs or LogSetup(loglevel)
        pool = pool or conf.worker_pool
        capabilities = app.plugins.pools.get(pool).capabilities \
            if pool in app.plugins.pools else None
        fixed = capabilities.fixed_concurrency if capabilities else None
        if autoscale is not None:
            if capabilities is not None and not capabilities.resize:
                raise ConfigurationError(f"--autoscale needs a pool that can grow and shrink; "
                                         f"the {pool} pool cannot (use -P threads or prefork)")
            concurrency = concurrency or autoscale[1]  # it starts at MIN, as Celery's
        self.options = WorkerOptions(
            nodename=nodename or f"kernel@{socket.gethostname()}",
            pool=pool,
            # a pool that runs a set number of tasks at once (solo: one) is shown and
            # prefetched for as what it runs, whatever was asked
            concurrency=fixed or concurrency or conf.worker_concurrency or default_concurrency(),
            # Celery's rule: without -Q, every queue of task_queues (else the default one).
            queues=tuple(queues or app.producer.routes().queue_names()),
            max_tasks_per_child=max_tasks_per_child or conf.worker_max_tasks_per_child,
            max_memory_per_child=max_memory_per_child or conf.worker_max_memory_per_child,
            prefetch_multiplier=prefetch_multiplier or conf.worker_prefetch_multiplier,
            shutdown_timeout=(conf.worker_shutdown_timeout if shutdown_timeout is None
                              else shutdown_timeout),
            lease_seconds=app.lease_seconds,
            heartbeat_file=heartbeat_file,
            child_link=child_link,
            processes=processes,
            worker_key=worker_key,
            metrics_dir=metrics_dir,
        )
        #: ``/metrics`` is served here (None: not served); port 0 picks a free one.
        self.metrics_port = metrics_port
        self.metrics_host = metrics_host
        self.metrics: MetricsServer | None = None
        #: (max, min) the pool autoscales within (``--autoscale``), or None.
        self.autoscale_bounds = autoscale
        self.autoscaler: Autoscaler | None = None
        self.blueprint = Blueprint(spec.load() for spec in app.plugins.bootsteps.values())
        self.consumer: Consumer | None = None
        #: the pool of consumer children, when this process only supervises.
        self.children: Pool | None = None
        self._adopter: Orphans | None = None
        #: `stop` began.
        self.stopping = False
        self._heartbeat: Heartbeat | None = None  # the children's, told by their beats
        self._adopting = threading.Lock()
        self._shutdown = threading.Event()
        self._signals = 0
        self._reached = False
        self._steps: dict[type, Any] = {}
        self.started_at = time.monotonic()
        self.presence: Presence | None = None
        self.mailbox: Mailbox | None = None
        #: what the pool's plugin did to the process before anything ran (`PoolSpec.patch`).
        self.patched: str | None = None

    @property
    def nodename(self) -> str:
        return self.options.nodename

    def graph_dot(self) -> str:
        return self.blueprint.dot()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start every bootstep; returns once the worker consumes."""
        FATAL.clear()  # a failure of an earlier worker in this process is not this one's
        if self.options.child_link is None:
            self._patch()  # before any connection: reaching the broker opens one
            if not self.reach_broker():
                return
        self.app.plugins.hook.kernel_worker_init(worker=self)
        self.app.import_discovered()  # after the plugins set up (kernel-django: django.setup)
        self.app.codec.build_accepted_signers()
        opts = self.options
        spec = None if opts.child_link is not None else self.app.plugins.pools.get(opts.pool)
        if spec is not None and spec.capabilities.consumers:
            self.app.require_multi_process()
            if self.metrics_port is not None:
                self.options = opts = dataclasses.replace(opts,
                                                          metrics_dir=shared_directory())
            self.children = spec.factory(opts.concurrency,
                                         max_tasks_per_child=opts.max_tasks_per_child,
                                         max_memory_per_child=opts.max_memory_per_child)
            self.children.start_consumers(ConsumerProcess(self.app, opts, self.logs),
                                          self._adopt, self._give_back)
            if opts.heartbeat_file is not None:
                children, path = self.children, Path(opts.heartbeat_file)
                self._heartbeat = Heartbeat(
                    f"touching {path} (every child beats)",
                    lambda: children.consumers_alive(CHILD_SILENCE * liveness.PERIOD),
                    liveness.touch(path))
            self._be_present()
            self._serve_metrics(None)
            self._supervise_size()
            self.app.plugins.hook.kernel_worker_ready(worker=self)
            return
        local = None
        if self.metrics_port is not None or opts.metrics_dir is not None:
            local = count_here(self.app, opts.metrics_dir)
        self._steps = values = self.blueprint.start(self.app, self.options)
        self.consumer = values[ConsumerStep]
        for name, arguments in opts.child_link.standing() if opts.child_link else ():
            remote.run_local(self, name, arguments)  # what the node was told before
        self.consumer.begin()
        if opts.child_link is None:
            self._be_present()
            self._serve_metrics(local)
            self._supervise_size()
        self.app.plugins.hook.kernel_worker_ready(worker=self)

    def _patch(self) -> None:
        """What the pool's plugin must do to the process first (gevent's monkey-patching),
        before the worker opens a connection or starts a thread; a no-op when ``kernel worker
        -P`` did it before importing the app."""
        spec = self.app.plugins.pools.get(self.options.pool)
        if spec.patch is not None and self.patched is None:
            self.patched = spec.patch()

    def reach_broker(self) -> bool:
        """Wait until the broker answers (``broker_connection_retry_on_startup``...; see
        `kernel.worker.connection`): False if a shutdown was asked for first. Raises
        `BrokerUnreachable` when the attempts are spent."""
        if not self._reached:
            self._reached = connection.reach(
                self.app.transport, self.app.conf.broker_url, self.options.queues,
                connection.Retrying.at_startup(self.app.conf), self._shutdown)
        return self._reached

    def _supervise_size(self) -> None:
        if self.autoscale_bounds is not None:
            self.autoscale(*self.autoscale_bounds)

    def _serve_metrics(self, local: EventMetrics | None) -> None:
        if self.metrics_port is not None:
            self.metrics = MetricsServer(self, self.metrics_host, self.metrics_port,
                                         self.options.metrics_dir, local)

    def _be_present(self) -> None:
        """Events and remote control, in the process that supervises: worker-online and
        heartbeats, and the mailbox, where the broker broadcasts."""
        if not self.app.transport.capabilities.broadcast:
            log.info("%s: the broker cannot broadcast; no events or remote control",
                     self.nodename)
            return
        if self.app.conf.worker_enable_remote_control:
            self.mailbox = Mailbox(self)
            self.mailbox.start()
        self.presence = Presence(self, self._counts)
        self.presence.start()

    def autoscale(self, maximum: int, minimum: int) -> None:
        """Autoscale the pool within [minimum, maximum] from now on."""
        if self.autoscaler is None:
            self.autoscaler = Autoscaler(self, maximum, minimum)
            self.autoscaler.start()
        else:
            self.autoscaler.bounds(maximum, minimum)

    def load(self) -> tuple[int, int]:
        """(tasks running, tasks waiting: prefetched here or queued at the broker)."""
        answers = self.ask("local_stats", {})
        waiting = sum(a.get("waiting", 0) for a in answers if isinstance(a, dict))
        queues = self.consumer.queues if self.consumer is not None else self.options.queues
        try:
            waiting += sum(self.app.transport.size(q) for q in queues)
        except NotImplementedError:
            pass  # a broker that cannot count: what is prefetched tells
        return self._counts()[0], waiting

    def _counts(self) -> tuple[int, int]:
        """(tasks running, tasks ended) for heartbeats."""
        if self.children is not None:
            return self.children.active, self.children.consumers_processed()
        assert self.consumer is not None
        return len(self.consumer.running_now()), self.consumer.counters.processed

    def stop(self, warm: bool = True) -> None:
        """Warm: finish running tasks (up to the shutdown timeout); cold: stop them now. Either
        way unfinished messages go back to the broker. Steps stop in reverse start order, so a
        step that requires the consumer stops before it."""
        self.stopping = True
        if self.autoscaler is not None:
            self.autoscaler.stop()
        if self._heartbeat is not None:
            self._heartbeat.stop()
        if self.children is not None:
            self.children.stop(wait=warm, timeout=self.options.shutdown_timeout
                               + CHILD_STOP_MARGIN)
        if self.consumer is not None:
            self.consumer.quiesce()
            if not warm:
                self.consumer.go_cold()
        self.blueprint.stop()
        if self.mailbox is not None:  # after the consumer quiesced: joining takes a moment
            self.mailbox.stop()
        if self.presence is not None:
            self.presence.stop()
        if self.metrics is not None:
            self.metrics.stop()
        self.app.events.close()
        self.app.plugins.hook.kernel_worker_shutdown(worker=self)
        self.app.close()

    def _adopt(self, outcome: Outcome) -> None:
        """A child's job that the child never ended: settled here."""
        self._settler().adopt(outcome)

    def _give_back(self, held: list[tuple[Any, str, int]]) -> None:
        """What a child held when it died: given back here."""
        self._settler().give_back(held)

    def _settler(self) -> Orphans:
        """The consumer that settles for lost children: it fetches nothing (made on first
        use: no connection is opened before the children start)."""
        with self._adopting:
            if self._adopter is None:
                opts, app = self.options, self.app
                assert self.children is not None
                self._adopter = Orphans(
                    app, app.transport, self.children, Executor(app, opts.nodename),
                    queues=list(opts.queues), concurrency=opts.concurrency,
                    prefetch=opts.concurrency, lease_seconds=opts.lease_seconds,
                    shutdown_timeout=opts.shutdown_timeout)
            return self._adopter

    # ------------------------------------------------------------------ remote control

    def local_consumer(self) -> Consumer:
        """This process's consumer (`kernel.worker.remote` runs consumers' commands on it)."""
        if self.consumer is None:
            raise RuntimeError("this process supervises consumer processes; ask them")
        return self.consumer

    def step(self, step: type[Any]) -> Any:
        """The value bootstep `step` started with here, or None."""
        return self._steps.get(step)

    def ask(self, name: str, arguments: dict[str, Any], *, standing: bool = False,
            ) -> list[Any]:
        """Consumer command `name` on every consumer of this node: the answers. `standing`:
        consumer processes started later get it too."""
        if self.children is not None:
            return self.children.ask_consumers((name, arguments), remote.ASK_TIMEOUT,
                                               standing=standing)
        return [remote.run_local(self, name, arguments)]

    @property
    def pool(self) -> Pool:
        """The pool tasks run in: the consumer children's, or this process's consumer's."""
        return self.children if self.children is not None else self.local_consumer().pool

    def restart_pool(self) -> None:
        """Replace the pool's processes, each after its job (the remote ``pool_restart``)."""
        self.pool.restart()

    def beat(self) -> None:
        """A heartbeat now (the remote ``heartbeat`` command)."""
        if self.presence is not None:
            self.presence.beat(freq=5.0)  # as Celery's: one that does not set the pace

    def resize(self, delta: int) -> None:
        """Grow (`delta` > 0) or shrink the pool; the consumer holds for the new size."""
        if delta > 0:
            self.pool.grow(delta)
        else:
            self.pool.shrink(-delta)
        self.options = dataclasses.replace(self.options,
                                           concurrency=self.options.concurrency + delta)
        if self.consumer is not None:
            self.consumer.resize(self.options.concurrency)

    def request_shutdown(self, cold: bool = False) -> None:
        if cold and self.consumer is not None:
            self.consumer.go_cold()
        if cold and self.children is not None:
            self.children.stop(wait=False)  # during a warm stop: the children go cold
        self._shutdown.set()

    def run(self) -> int:
        """Start, serve until SIGTERM/SIGINT, shut down; the process exit code."""
        self.logs.apply(self.nodename)
        self._patch()
        self.print_banner()
        try:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        except ValueError:
            # Not the main thread. Asked, not compared: under eventlet's patching the main
            # thread's current_thread() is not main_thread().
            pass
        if not self.reach_broker():  # stopped while the broker was unreachable
            log.info("%s stopped before it could reach the broker", self.nodename)
            self.app.close()
            return 0
        self.start()
        log.info("%s ready.", self.nodename)
        watch = connection.Watch(self.app.transport, self.app.conf, self.options.queues,
                                 BROKER_WATCH) if self.children is not None else None
        while not self._shutdown.wait(1.0):
            if watch is not None:
                watch.look()
            if FATAL.is_set():
                log.critical("%s: %s; shutting down (exit status 1) so that its supervisor "
                             "starts a fresh worker", self.nodename, FATAL.reason)
                break
        cold = self._signals > 1
        log.info("%s shutdown: %s", "cold" if cold else "warm", self.nodename)
        self.stop(warm=not cold)
        return EXIT_FATAL if FATAL.is_set() else 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals == 1:
            log.warning("%s received: warm shutdown (send again for cold shutdown)",
                        signal.Signals(signum).name)
            self.request_shutdown()
        else:
            log.warning("%s received again: cold shutdown", signal.Signals(signum).name)
            self.request_shutdown(cold=True)

    # ------------------------------------------------------------------ banner

    def banner_rows(self) -> list[tuple[str, str]]:
        conf, opts = self.app.conf, self.options
        limits = []
        if opts.max_tasks_per_child:
            limits.append(f"max-tasks-per-child={opts.max_tasks_per_child}")
        if opts.max_memory_per_child:
            limits.append(f"max-memory-per-child={opts.max_memory_per_child} KiB")
        return [
            ("app", f"{self.app.main} ({getattr(self.app, '_import_spec', None) or '-'})"),
            ("node", f"{opts.nodename} (pid {os.getpid()})"),
            ("broker", mask_url(conf.broker_url)),
            ("results", mask_url(conf.result_backend) if conf.result_backend else "disabled"),
            ("pool", f"{opts.pool}, concurrency {opts.concurrency}"
                     + (f" ({', '.join(limits)})" if limits else "")),
            *([("patched", self.patched)] if self.patched else []),
            ("prefetch", self._prefetch_row()),
            ("queues", ", ".join(opts.queues)),
            # The built-in celery.* tasks (canvas) are there in every app: not listed, as in Celery.
            ("tasks", "\n".join(sorted(t for t in self.app.tasks if not t.startswith("celery.")))
             or "(none registered)"),
        ]

    def _prefetch_row(self) -> str:
        opts = self.options
        capabilities = self.app.plugins.pools.get(opts.pool).capabilities
        floor, ceiling = prefetch_bounds(opts.concurrency,
                                         opts.concurrency * opts.prefetch_multiplier,
                                         self.app.conf.worker_prefetch_budget, capabilities)
        return str(floor) + (f" (up to {ceiling} while tasks are short)" if ceiling > floor else "")

    def print_banner(self) -> None:
        if self.logs.format == "json":  # JSON lines stay JSON lines, even detached
            log.info("kernel worker: %s", "; ".join(
                f"{key} {value}".replace("\n", ", ") for key, value in self.banner_rows()))
            return
        from rich.console import Console
        from rich.panel import Panel
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan")
        table.add_column()
        for key, value in self.banner_rows():
            table.add_row(key, value)
        Console(stderr=True).print(Panel(table, title="kernel worker", expand=False))


class ConsumerProcess(ChildMain):
    """What each consumer child of a process pool runs: a worker of its own, of concurrency 1,
    with the pool its supervisor gives (the child's main thread runs the tasks)."""

    def __init__(self, app: App, options: WorkerOptions, logs: LogSetup) -> None:
        self.app = app
        self.options = options
        self.logs = logs
        #: this worker among others, even of one node name: node name and process id.
        self.key = f"{options.nodename}:{os.getpid()}"
        self.worker: Worker | None = None

    def __getstate__(self) -> dict[str, object]:
        # The app goes by import spec, its settings by value: the worker's command line
        # (and code run after the import) may have changed them.
        return {"app": self.app, "conf": self.app.conf, "options": self.options,
                "logs": self.logs, "key": self.key, "worker": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.app.conf = state.pop("conf")
        del self.__dict__["conf"]

    def start(self, link: ChildLink) -> None:
        opts = self.options
        self.logs.apply(opts.nodename, link.index())
        self.worker = Worker(
            self.app, pool=opts.pool, concurrency=1, queues=opts.queues,
            prefetch_multiplier=opts.prefetch_multiplier,
            shutdown_timeout=opts.shutdown_timeout, nodename=opts.nodename,
            logs=self.logs, heartbeat_file=opts.heartbeat_file, child_link=link,
            processes=opts.concurrency, worker_key=self.key, metrics_dir=opts.metrics_dir)
        self.worker.start()
        consumer = self.worker.consumer
        assert consumer is not None
        link.on_stop(consumer.surrender)
        consumer.holding = link.holding

    def answer(self, question: Any) -> Any:
        name, arguments = question
        if self.worker is None or name not in remote.COMMANDS:
            return {"error": f"cannot answer {name!r} here"}
        return remote.run_local(self.worker, name, arguments)

    def stop(self, warm: bool) -> None:
        if self.worker is None:
            return
        if self.worker.stopping:  # a cold request during a warm stop
            self.worker.request_shutdown(cold=not warm)
            return
        self.worker.stop(warm=warm)
