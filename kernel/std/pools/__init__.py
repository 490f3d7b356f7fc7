"""Entry point of the std pools (solo, threads, asyncio, prefork).

Light on purpose: the implementations are imported by the factories, on first use. The
capabilities declared here are the classes' own (they import them from this module).
"""

from __future__ import annotations

from collections.abc import Iterator

from kernel.plugin import Lazy, PoolCapabilities, PoolSpec, hookimpl

SOLO_CAPABILITIES = PoolCapabilities(soft_time_limit=True, fixed_concurrency=1)
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
    consumers=True,
)


@hookimpl
def kernel_pools() -> Iterator[PoolSpec]:
    yield PoolSpec("solo", Lazy("kernel.std.pools.solo:SoloPool"), SOLO_CAPABILITIES)
    yield PoolSpec(
        "threads", Lazy("kernel.std.pools.threads:ThreadPool"), THREADS_CAPABILITIES
    )
    yield PoolSpec(
        "asyncio", Lazy("kernel.std.pools.asyncio:AsyncioPool"), ASYNCIO_CAPABILITIES
    )
    yield PoolSpec(
        "prefork", Lazy("kernel.std.pools.prefork.pool:PreforkPool"), PREFORK_CAPABILITIES
    )
