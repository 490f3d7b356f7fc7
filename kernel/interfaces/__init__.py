"""Typed contracts the hot path calls. Plugins implement these; the kernel never calls them
through pluggy."""

from kernel.interfaces.bootstep import Bootstep
from kernel.interfaces.codec import Compressor, Serializer, Signer, Unsigned
from kernel.interfaces.pool import (
    Job,
    OnDone,
    Outcome,
    OutcomeKind,
    Pool,
    PoolCapabilities,
    Runner,
)
from kernel.interfaces.ratelimit import RateLimitStore
from kernel.interfaces.results import ResultStore, ResultStoreCapabilities
from kernel.interfaces.schedule import EntryState, Leader, ScheduleStore
from kernel.interfaces.transport import (
    Delivery,
    Outgoing,
    Subscription,
    Transport,
    TransportCapabilities,
)

__all__ = [
    "Bootstep",
    "Compressor",
    "Delivery",
    "EntryState",
    "Job",
    "OnDone",
    "Leader",
    "Outcome",
    "OutcomeKind",
    "Outgoing",
    "Pool",
    "PoolCapabilities",
    "RateLimitStore",
    "ResultStore",
    "ResultStoreCapabilities",
    "Runner",
    "ScheduleStore",
    "Serializer",
    "Signer",
    "Unsigned",
    "Subscription",
    "Transport",
    "TransportCapabilities",
]
