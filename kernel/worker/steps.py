"""The worker's own bootsteps, registered like any plugin's (std plugin ``worker``). The pool
starts first, so process pools start before this process opens any broker or result-store
connection."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from kernel.interfaces.bootstep import Bootstep, Deps
from kernel.interfaces.pool import Pool
from kernel.interfaces.transport import Transport
from kernel.worker.consumer import Consumer
from kernel.worker.execute import Executor

if TYPE_CHECKING:
    from kernel.records import ResultBackend


class PoolStep(Bootstep[Pool]):
    name = "pool"

    def start(self, deps: Deps) -> Pool:
        app, options = deps.app, deps.options
        pool: Pool
        if options.child_link is not None:  # a prefork child: its supervisor's pool
            pool = options.child_link.pool()
        else:
            spec = app.plugins.pools.get(options.pool)
            if spec.capabilities.isolated:
                app.require_multi_process()
            pool = spec.factory(options.concurrency,
                                max_tasks_per_child=options.max_tasks_per_child,
                                max_memory_per_child=options.max_memory_per_child)
        self.executor = Executor(app, options.nodename)
        pool.start(self.executor)
        self.pool = pool
        return pool

    def stop(self) -> None:
        self.executor.stop()  # in-process pools: after-hooks still retrying give up
        self.pool.stop(wait=False)


class BrokerStep(Bootstep[Transport]):
    name = "broker"
    requires = (PoolStep,)  # after the pool: no connection exists when children start

    def start(self, deps: Deps) -> Transport:
        return deps.app.transport


class ResultsStep(Bootstep["ResultBackend | None"]):
    name = "results"
    requires = (PoolStep,)

    def start(self, deps: Deps) -> ResultBackend | None:
        return deps.app.backend if deps.app.conf.result_backend else None


class ConsumerStep(Bootstep[Consumer]):
    name = "consumer"
    requires = (BrokerStep, PoolStep, ResultsStep)

    def start(self, deps: Deps) -> Consumer:
        app, options = deps.app, deps.options
        # task_queues' exchanges and bindings, so clients routing by exchange reach the queues
        # (a transport declares them with its first fetch).
        app.producer.declare(deps[BrokerStep])
        self.consumer = Consumer(
            app, deps[BrokerStep], deps[PoolStep], Executor(app, options.nodename),
            queues=list(options.queues), concurrency=options.concurrency,
            prefetch=options.concurrency * options.prefetch_multiplier,
            lease_seconds=options.lease_seconds, shutdown_timeout=options.shutdown_timeout,
            processes=options.processes, worker_key=options.worker_key)
        self.consumer.start()
        return self.consumer

    def stop(self) -> None:
        # Warm unless the worker asked the consumer to go cold first.
        self.consumer.stop()


def default_concurrency() -> int:
    return os.cpu_count() or 1
