"""The worker's built-in bootsteps. The pool starts first, so process pools start before this
process opens any broker or result-store connection."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kernel.interfaces.bootstep import Bootstep
from kernel.interfaces.pool import Pool
from kernel.interfaces.transport import Transport
from kernel.revocation import Revocations
from kernel.worker.consumer import Consumer
from kernel.worker.execute import Executor

if TYPE_CHECKING:
    from kernel.app import App
    from kernel.backend import ResultBackend


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


class PoolStep(Bootstep):
    name = "pool"
    requires = ("app", "options")

    def start(self, app: App, options: WorkerOptions) -> Pool:  # type: ignore[override]
        spec = app.plugins.registry("pool").get(options.pool)
        if spec.capabilities.isolated:
            app.require_multi_process()
        pool: Pool = spec.factory(options.concurrency,
                                  max_tasks_per_child=options.max_tasks_per_child,
                                  max_memory_per_child=options.max_memory_per_child)
        pool.start(Executor(app, options.nodename))
        self.pool = pool
        return pool

    def stop(self) -> None:
        self.pool.stop(wait=False)


class BrokerStep(Bootstep):
    name = "broker"
    requires = ("app", "pool")  # after the pool: no connection exists when children start

    def start(self, app: App, pool: Pool) -> Transport:  # type: ignore[override]
        self.app = app
        return app.transport


class ResultsStep(Bootstep):
    name = "results"
    requires = ("app", "pool")

    def start(self, app: App, pool: Pool) -> ResultBackend | None:  # type: ignore[override]
        return app.backend if app.conf.result_backend else None


class ConsumerStep(Bootstep):
    name = "consumer"
    requires = ("app", "options", "broker", "pool", "results")

    def start(self, app: App, options: WorkerOptions, broker: Transport, pool: Pool,  # type: ignore[override]
              results: Any) -> Consumer:
        self.consumer = Consumer(
            app, broker, pool, queues=list(options.queues), concurrency=options.concurrency,
            prefetch=options.concurrency * options.prefetch_multiplier,
            lease_seconds=options.lease_seconds, shutdown_timeout=options.shutdown_timeout)
        self.consumer.start()
        return self.consumer

    def stop(self) -> None:
        self.consumer.stop(warm=False)


BUILTIN_STEPS: tuple[type[Bootstep], ...] = (PoolStep, BrokerStep, ResultsStep, ConsumerStep,
                                             Revocations)


def default_concurrency() -> int:
    return os.cpu_count() or 1
