"""The worker's own bootsteps (std plugin ``worker``), registered through the same hook as a
user's: pool, broker, results, consumer, revocations, liveness and beat (``-B``). Light: the
steps are imported when a worker starts, never when an App is made."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import BootstepSpec, hookimpl


@hookimpl
def kernel_bootsteps() -> Iterable[BootstepSpec]:
    for name, path in (("pool", "kernel.worker.steps:PoolStep"),
                       ("broker", "kernel.worker.steps:BrokerStep"),
                       ("results", "kernel.worker.steps:ResultsStep"),
                       ("consumer", "kernel.worker.steps:ConsumerStep"),
                       ("revocations", "kernel.worker.revocations:Revocations"),
                       ("liveness", "kernel.worker.liveness:Liveness"),
                       ("beat", "kernel.beat.step:BeatStep")):
        yield BootstepSpec(name, path)
