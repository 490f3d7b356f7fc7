"""Registration of the AMQP transport and the rpc result store (entry point ``amqp`` in group
``kernel.plugins``).

Light on purpose: kombu and py-amqp are imported by the factory, on first use.
"""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import Lazy, ResultStoreSpec, TransportSpec, hookimpl
from kernel.interfaces.results import ResultStoreCapabilities
from kernel.interfaces.transport import TransportCapabilities

#: leases=False: RabbitMQ has no per-message lease. An unacked delivery stays with its consumer
#: for as long as the channel lives and comes back when the connection dies; the only clock is
#: RabbitMQ's ``consumer_timeout`` (30 minutes by default), which closes the channel of a
#: delivery held longer, so tasks that run longer need a larger ``consumer_timeout`` on the
#: broker.
CAPABILITIES = TransportCapabilities(
    delayed_delivery=True, priorities=True, leases=False, dead_letter=True, multi_process=True,
    inspect_queues=True, broadcast=True, exchanges=True)
SCHEMES = ("amqp", "amqps", "pyamqp")
#: rpc://: results are pushed to the waiting client, live in its memory (not persistent), and
#: there are no counters. multi_process: workers in other processes send to it.
RPC_CAPABILITIES = ResultStoreCapabilities(
    push_wait=True, atomic_counter=False, persistent=False, multi_process=True)


@hookimpl
def kernel_transports() -> Iterable[TransportSpec]:
    yield TransportSpec("amqp", SCHEMES, Lazy("kernel_amqp.transport:AmqpTransport"), CAPABILITIES)


@hookimpl
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    yield ResultStoreSpec("rpc", ("rpc",), Lazy("kernel_amqp.rpc:RpcResultStore"),
                          RPC_CAPABILITIES)
