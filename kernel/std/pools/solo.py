"""The solo pool: one job at a time, in one dedicated thread of the worker's process.

`submit` never blocks the consumer: jobs queue for the single thread. Soft time limits work as
in the threads pool (raised between bytecodes, so not inside a blocking C call); there is no hard
limit.
"""

from __future__ import annotations

from kernel.std.pools.threads import ThreadPool
from kernel.std.pools import SOLO_CAPABILITIES


class SoloPool(ThreadPool):
    """A threads pool fixed at one thread; the requested concurrency is ignored."""

    capabilities = SOLO_CAPABILITIES
    _kind = "solo"

    def __init__(self, concurrency: int = 1, **limits: int | None) -> None:
        super().__init__(1, **limits)

    def grow(self, n: int = 1) -> None:
        raise NotImplementedError("the solo pool runs one job at a time; use -P threads to resize")

    def shrink(self, n: int = 1) -> None:
        raise NotImplementedError("the solo pool runs one job at a time; use -P threads to resize")
