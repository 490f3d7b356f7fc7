"""Entry point of the std pools (solo, threads, asyncio, prefork).

Light on purpose: the implementations are imported by the factories, on first use. The
capabilities declared here are the classes' own (they import them from this module).
"""

from __future__ import annotations

from collections.abc import Iterator

from kernel.hookspecs import hookimpl
from kernel.interfaces.pool import PoolCapabilities
from kernel.specs import Lazy, PoolSpec

SOLO_CAPABILITIES = PoolCapabilities(soft_time_limit=True)
THREADS_CAPABILITIES = PoolCapabilities(soft_time_limit=True, resize=True)
ASYNCIO_CAPABILITIES = PoolCapabilities(hard_time_limit=True, terminate=True, resize=True)
PREFORK_CAPABILITIES = PoolCapabilities(
    soft_time_limit=True,
    hard_time_limit=True,
    terminate=True,
    recycle_children=True,
    resize=True,
    isolated=True,
    queue_ahead=True,
)


@hookimpl
def kernel_pools() -> Iterator[PoolSpec]:
    yield PoolSpec("solo", Lazy("kernel.std.pool_solo:SoloPool"), SOLO_CAPABILITIES)
    yield PoolSpec(
        "threads", Lazy("kernel.std.pool_threads:ThreadPool"), THREADS_CAPABILITIES
    )
    yield PoolSpec(
        "asyncio", Lazy("kernel.std.pool_asyncio:AsyncioPool"), ASYNCIO_CAPABILITIES
    )
    yield PoolSpec(
        "prefork", Lazy("kernel.std.prefork.pool:PreforkPool"), PREFORK_CAPABILITIES
    )
