"""The embedded default broker and result store (std plugin ``sqlite``): one SQLite file that
every process on the host can share. Kept light: the implementation is imported on first use."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from kernel.hookspecs import hookimpl
from kernel.interfaces.results import ResultStoreCapabilities
from kernel.interfaces.transport import TransportCapabilities
from kernel.specs import Options, ResultStoreSpec, TransportSpec

if TYPE_CHECKING:
    from kernel.std.sqlite_results import SqliteResultStore
    from kernel.std.sqlite_transport import SqliteTransport

TRANSPORT_CAPABILITIES = TransportCapabilities(
    delayed_delivery=True, priorities=True, leases=True, dead_letter=True, multi_process=True,
    inspect_queues=True)
RESULT_STORE_CAPABILITIES = ResultStoreCapabilities(
    push_wait=False, atomic_counter=True, persistent=True, multi_process=True)


def make_transport(url: str, options: Options) -> SqliteTransport:
    from kernel.std.sqlite_transport import SqliteTransport

    return SqliteTransport(url, options)


def make_result_store(url: str, options: Options) -> SqliteResultStore:
    from kernel.std.sqlite_results import SqliteResultStore

    return SqliteResultStore(url, options)


@hookimpl
def kernel_transports() -> Iterable[TransportSpec]:
    yield TransportSpec("sqlite", ("sqlite",), make_transport, TRANSPORT_CAPABILITIES)


@hookimpl
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    yield ResultStoreSpec("sqlite", ("sqlite",), make_result_store, RESULT_STORE_CAPABILITIES)
