"""Conformance suites for plugin authors: subclass a suite in your tests and give it a fixture.

Each suite is a plain pytest test class with an abstract fixture that returns a fresh instance of
your implementation; tests are gated on the capabilities your record declares, never on names::

    from kernel.testing import TransportSuite

    class TestMyTransport(TransportSuite):
        @pytest.fixture
        def transport(self):
            t = MyTransport("my://localhost", {})
            yield t
            t.close()

Suites: `TransportSuite`, `BroadcastSuite`, `ResultStoreSuite`, `RateLimitStoreSuite`,
`ScheduleStoreSuite`, `SerializerSuite`, `CompressorSuite`, `SignerSuite`, `PoolSuite` (and,
for a pool of green threads, `kernel.testing.green`: `GreenPoolSuite`, `GreenWorkerSuite`; for
kernel workers on a result store, `kernel.testing.store_workers`: `StoreWorkerSuite`).
`check_distribution(pyproject)` checks that what a distribution declares under
``[tool.kernel]`` is what its plugin registers.

Helpers for tests that need real processes: `kernel.testing.servers` (a server binary or
emulator on a free port), `kernel.testing.workers` (real worker processes) and
`kernel.testing.interop` (the tasks both sides of a Celery interop test run).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kernel.testing.codec import CompressorSuite, SerializerSuite, SignerSuite
    from kernel.testing.broadcast import BroadcastSuite
    from kernel.testing.pool import PoolSuite
    from kernel.testing.ratelimit import RateLimitStoreSuite
    from kernel.testing.results import ResultStoreSuite
    from kernel.testing.schedule import ScheduleStoreSuite
    from kernel.testing.transport import TransportSuite

__all__ = ["BroadcastSuite", "CompressorSuite", "PoolSuite", "RateLimitStoreSuite",
           "ResultStoreSuite", "ScheduleStoreSuite", "SerializerSuite", "SignerSuite",
           "TransportSuite", "check_distribution"]

_WHERE = {
    "TransportSuite": "kernel.testing.transport",
    "BroadcastSuite": "kernel.testing.broadcast",
    "ResultStoreSuite": "kernel.testing.results",
    "RateLimitStoreSuite": "kernel.testing.ratelimit",
    "ScheduleStoreSuite": "kernel.testing.schedule",
    "SerializerSuite": "kernel.testing.codec",
    "CompressorSuite": "kernel.testing.codec",
    "SignerSuite": "kernel.testing.codec",
    "check_distribution": "kernel.testing.distribution",
    "PoolSuite": "kernel.testing.pool",
}


def __getattr__(name: str) -> Any:
    # Lazy, so importing kernel.testing does not import pytest until a suite is used.
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(name)
