"""Entry point of kernel-redis (``kernel.plugins``: ``redis``). Kept light: redis-py and the
implementation modules are imported inside the factories, on first use."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import (
    Lazy,
    RateLimitStoreSpec,
    ResultStoreSpec,
    ScheduleStoreSpec,
    TransportSpec,
    hookimpl,
)
from kernel.interfaces.results import ResultStoreCapabilities
from kernel.interfaces.transport import TransportCapabilities


SCHEMES = ("redis", "rediss", "redis+sentinel", "rediss+sentinel")

TRANSPORT_CAPABILITIES = TransportCapabilities(
    delayed_delivery=True, priorities=True, leases=True, dead_letter=True, multi_process=True,
    inspect_queues=True, broadcast=True, settle_anywhere=True)
RESULT_STORE_CAPABILITIES = ResultStoreCapabilities(
    push_wait=True, atomic_counter=True, persistent=True, multi_process=True)


@hookimpl
def kernel_transports() -> Iterable[TransportSpec]:
    yield TransportSpec("redis", SCHEMES,
                       Lazy("kernel_redis.transport:RedisTransport"), TRANSPORT_CAPABILITIES)


@hookimpl
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    yield ResultStoreSpec("redis", SCHEMES,
                         Lazy("kernel_redis.results:RedisResultStore"), RESULT_STORE_CAPABILITIES)


@hookimpl
def kernel_schedule_stores() -> Iterable[ScheduleStoreSpec]:
    yield ScheduleStoreSpec("redis", SCHEMES,
                           Lazy("kernel_redis.schedule:RedisScheduleStore"))


@hookimpl
def kernel_rate_limit_stores() -> Iterable[RateLimitStoreSpec]:
    yield RateLimitStoreSpec("redis", SCHEMES, Lazy("kernel_redis.ratelimit:RedisRateLimitStore"))
