"""An in-process transport and result store (std plugin ``memory``): ``memory://`` or
``memory://name``. Every App and in-process worker of one process that names the same broker
shares it; nothing leaves the process. For tests, eager mode and single-process tools."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import (
    ConfigurationError,
    Lazy,
    RateLimitStoreSpec,
    ScheduleStoreSpec,
    ResultStoreCapabilities,
    ResultStoreSpec,
    TransportCapabilities,
    TransportSpec,
    hookimpl,
)


TRANSPORT_CAPABILITIES = TransportCapabilities(
    delayed_delivery=True, priorities=True, leases=True, dead_letter=True, multi_process=False,
    inspect_queues=True, broadcast=True)
RESULT_STORE_CAPABILITIES = ResultStoreCapabilities(
    push_wait=True, atomic_counter=True, persistent=False, multi_process=False)


def name_from_url(url: str) -> str:
    """The broker or store name of a ``memory://name`` URL ("" for ``memory://``)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme != "memory":
        raise ConfigurationError(f"{url!r} is not a memory URL; write memory:// or memory://name")
    return rest.strip("/")


@hookimpl
def kernel_transports() -> Iterable[TransportSpec]:
    yield TransportSpec(
        "memory", ("memory",),
        Lazy("kernel.std.memory.transport:MemoryTransport"), TRANSPORT_CAPABILITIES
    )


@hookimpl
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    yield ResultStoreSpec(
        "memory", ("memory",),
        Lazy("kernel.std.memory.results:MemoryResultStore"), RESULT_STORE_CAPABILITIES
    )


@hookimpl
def kernel_rate_limit_stores() -> Iterable[RateLimitStoreSpec]:
    yield RateLimitStoreSpec(
        "memory", ("memory",), Lazy("kernel.std.memory.ratelimit:MemoryRateLimitStore")
    )


@hookimpl
def kernel_schedule_stores() -> Iterable[ScheduleStoreSpec]:
    yield ScheduleStoreSpec(
        "memory", ("memory",), Lazy("kernel.std.memory.schedule:MemoryScheduleStore")
    )
