"""Entry point of the std pools (solo, threads, asyncio, prefork).

Light on purpose: the implementations are imported by the factories, on first use. The
capabilities declared here are the classes' own (they import them from this module).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

from kernel.hookspecs import hookimpl
from kernel.interfaces.pool import PoolCapabilities
from kernel.specs import PoolSpec

if TYPE_CHECKING:
    from kernel.interfaces.pool import Pool

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
)


@dataclass(frozen=True)
class LazyPoolFactory:
    """``factory(concurrency, *, max_tasks_per_child, max_memory_per_child) -> Pool`` that imports
    the pool class (``"module:Class"``) only when called."""

    path: str

    def __call__(self, concurrency: int, **limits: int | None) -> Pool:
        module, _, name = self.path.partition(":")
        cls: type[Pool] = getattr(import_module(module), name)
        return cls(concurrency, **limits)


@hookimpl
def kernel_pools() -> Iterator[PoolSpec]:
    yield PoolSpec("solo", LazyPoolFactory("kernel.std.pool_solo:SoloPool"), SOLO_CAPABILITIES)
    yield PoolSpec(
        "threads", LazyPoolFactory("kernel.std.pool_threads:ThreadPool"), THREADS_CAPABILITIES
    )
    yield PoolSpec(
        "asyncio", LazyPoolFactory("kernel.std.pool_asyncio:AsyncioPool"), ASYNCIO_CAPABILITIES
    )
    yield PoolSpec(
        "prefork", LazyPoolFactory("kernel.std.prefork.pool:PreforkPool"), PREFORK_CAPABILITIES
    )
