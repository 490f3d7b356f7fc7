"""An in-process transport and result store (std plugin ``memory``): ``memory://`` or
``memory://name``. Every App and in-process worker of one process that names the same broker
shares it; nothing leaves the process. For tests, eager mode and single-process tools."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.hookspecs import hookimpl
from kernel.interfaces.results import ResultStoreCapabilities
from kernel.interfaces.transport import TransportCapabilities
from kernel.specs import Lazy, RateLimitStoreSpec, ResultStoreSpec, TransportSpec


TRANSPORT_CAPABILITIES = TransportCapabilities(
    delayed_delivery=True, priorities=True, leases=True, dead_letter=True, multi_process=False,
    inspect_queues=True, broadcast=True)
RESULT_STORE_CAPABILITIES = ResultStoreCapabilities(
    push_wait=True, atomic_counter=True, persistent=False, multi_process=False)


@hookimpl
def kernel_transports() -> Iterable[TransportSpec]:
    yield TransportSpec(
        "memory", ("memory",),
        Lazy("kernel.std.memory_impl:MemoryTransport"), TRANSPORT_CAPABILITIES
    )


@hookimpl
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    yield ResultStoreSpec(
        "memory", ("memory",),
        Lazy("kernel.std.memory_impl:MemoryResultStore"), RESULT_STORE_CAPABILITIES
    )


@hookimpl
def kernel_rate_limit_stores() -> Iterable[RateLimitStoreSpec]:
    yield RateLimitStoreSpec(
        "memory", ("memory",), Lazy("kernel.std.ratelimit_stores:MemoryRateLimitStore")
    )
