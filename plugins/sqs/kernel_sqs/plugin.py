"""Entry point of kernel-sqs (``kernel.plugins``: ``sqs``). Kept light: boto3 and the transport
are imported by the factory, on first use."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import Lazy, TransportCapabilities, TransportSpec, hookimpl

#: Celery's: ``sqs://`` (boto3's credentials) or ``sqs://KEY:SECRET@``.
SCHEMES = ("sqs",)

#: SQS has no fanout and no priorities: events and remote control need another broker, and a
#: message's priority is kept on it but does not order delivery. Delays are DelaySeconds (and
#: hops past 15 minutes), leases visibility timeouts, dead letters a queue of their own.
TRANSPORT_CAPABILITIES = TransportCapabilities(
    delayed_delivery=True, priorities=False, leases=True, dead_letter=True, multi_process=True,
    inspect_queues=True, broadcast=False, settle_anywhere=True)


@hookimpl
def kernel_transports() -> Iterable[TransportSpec]:
    yield TransportSpec("sqs", SCHEMES, Lazy("kernel_sqs.transport:SQSTransport"),
                        TRANSPORT_CAPABILITIES)
