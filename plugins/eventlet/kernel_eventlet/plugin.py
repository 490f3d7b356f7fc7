"""Entry point of kernel-eventlet (``kernel.plugins``: ``eventlet``). Kept light: eventlet is
imported when the pool is used or the process is patched."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import Lazy, PoolCapabilities, PoolSpec, hookimpl

#: every limit, a CPU loop's included (kernel.greenpool); green slots, for the prefetch.
CAPABILITIES = PoolCapabilities(soft_time_limit=True, hard_time_limit=True, terminate=True,
                                resize=True, green=True)


@hookimpl
def kernel_pools() -> Iterable[PoolSpec]:
    yield PoolSpec("eventlet", Lazy("kernel_eventlet.pool:EventletPool"), CAPABILITIES,
                   patch=Lazy("kernel_eventlet.patching:patch"))
