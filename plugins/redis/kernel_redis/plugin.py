"""Entry point of kernel-redis (``kernel.plugins``: ``redis``). Kept light: redis-py and the
implementation modules are imported inside the factories, on first use."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from kernel.hookspecs import hookimpl
from kernel.interfaces.results import ResultStoreCapabilities
from kernel.interfaces.transport import TransportCapabilities
from kernel.specs import Options, ResultStoreSpec, ScheduleStoreSpec, TransportSpec

if TYPE_CHECKING:
    from kernel_redis.results import RedisResultStore
    from kernel_redis.schedule import RedisScheduleStore
    from kernel_redis.transport import RedisTransport

SCHEMES = ("redis", "rediss", "redis+sentinel", "rediss+sentinel")

TRANSPORT_CAPABILITIES = TransportCapabilities(
    delayed_delivery=True, priorities=True, leases=True, dead_letter=True, multi_process=True,
    inspect_queues=True)
RESULT_STORE_CAPABILITIES = ResultStoreCapabilities(
    push_wait=True, atomic_counter=True, persistent=True, multi_process=True)


def make_transport(url: str, options: Options) -> RedisTransport:
    from kernel_redis.transport import RedisTransport

    return RedisTransport(url, options)


def make_result_store(url: str, options: Options) -> RedisResultStore:
    from kernel_redis.results import RedisResultStore

    return RedisResultStore(url, options)


def make_schedule_store(url: str, options: Options) -> RedisScheduleStore:
    from kernel_redis.schedule import RedisScheduleStore

    return RedisScheduleStore(url, options)


@hookimpl
def kernel_transports() -> Iterable[TransportSpec]:
    yield TransportSpec("redis", SCHEMES, make_transport, TRANSPORT_CAPABILITIES)


@hookimpl
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    yield ResultStoreSpec("redis", SCHEMES, make_result_store, RESULT_STORE_CAPABILITIES)


@hookimpl
def kernel_schedule_stores() -> Iterable[ScheduleStoreSpec]:
    yield ScheduleStoreSpec("redis", SCHEMES, make_schedule_store)
