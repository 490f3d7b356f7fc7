"""The embedded default broker, result store and schedule store (std plugin ``sqlite``): one
SQLite file that every process on the host can share. Kept light: the implementation is
imported on first use."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import (
    Lazy,
    RateLimitStoreSpec,
    ResultStoreCapabilities,
    ResultStoreSpec,
    ScheduleStoreSpec,
    TransportCapabilities,
    TransportSpec,
    hookimpl,
)


TRANSPORT_CAPABILITIES = TransportCapabilities(
    delayed_delivery=True, priorities=True, leases=True, dead_letter=True, multi_process=True,
    inspect_queues=True, broadcast=True, settle_anywhere=True)
RESULT_STORE_CAPABILITIES = ResultStoreCapabilities(
    push_wait=False, atomic_counter=True, persistent=True, multi_process=True)


@hookimpl
def kernel_transports() -> Iterable[TransportSpec]:
    yield TransportSpec(
        "sqlite", ("sqlite",),
        Lazy("kernel.std.sqlite.transport:SqliteTransport"), TRANSPORT_CAPABILITIES
    )


@hookimpl
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    yield ResultStoreSpec(
        "sqlite", ("sqlite",),
        Lazy("kernel.std.sqlite.results:SqliteResultStore"), RESULT_STORE_CAPABILITIES
    )


@hookimpl
def kernel_rate_limit_stores() -> Iterable[RateLimitStoreSpec]:
    yield RateLimitStoreSpec(
        "sqlite", ("sqlite",), Lazy("kernel.std.sqlite.ratelimit:SqliteRateLimitStore")
    )


@hookimpl
def kernel_schedule_stores() -> Iterable[ScheduleStoreSpec]:
    yield ScheduleStoreSpec(
        "sqlite", ("sqlite",), Lazy("kernel.std.sqlite.schedule:SqliteScheduleStore")
    )
