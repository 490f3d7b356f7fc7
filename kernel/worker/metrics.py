"""A worker's ``/metrics`` (``kernel worker --metrics-port``), served by prometheus_client.

Each consuming process counts its own events (`kernel.events.metrics.EventMetrics`, as a
listener of ``app.events``: no broker trip, task events sent or not). A worker of one process
serves its registry; a prefork worker's children count in prometheus_client's multiprocess mode
into a directory the parent made, and the parent serves them merged, with the pool's size read
when scraped.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Any

from kernel.events.metrics import EventMetrics, ValueCollector, forget_dead

if TYPE_CHECKING:
    from kernel.app import App
    from kernel.worker.worker import Worker

log = logging.getLogger("kernel.worker")
_ENV = "PROMETHEUS_MULTIPROC_DIR"


def shared_directory() -> str:
    """A directory for the children's counts, set in the environment before they start (the
    fork server and the children it makes inherit it)."""
    path = tempfile.mkdtemp(prefix="kernel-metrics-")
    os.environ[_ENV] = path
    return path


def count_here(app: App, directory: str | None) -> EventMetrics:
    """Count this process's events; into `directory`'s files in a prefork child."""
    from prometheus_client import CollectorRegistry, values

    if directory is not None:
        os.environ[_ENV] = directory
        # prometheus_client picks its value class at import: an app that imported it first
        # would otherwise count in this process's memory, which nobody scrapes.
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    metrics = EventMetrics(CollectorRegistry())
    app.events.listeners.append(metrics.event)
    return metrics


class MetricsServer:
    def __init__(self, worker: Worker, host: str, port: int, directory: str | None,
                 local: EventMetrics | None) -> None:
        from prometheus_client import CollectorRegistry, start_http_server

        self.directory = directory
        if directory is not None:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            registry.register(_Pruner(directory))  # first: collectors run in this order
            multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        else:
            assert local is not None
            registry = local.registry
        registry.register(ValueCollector(
            "kernel_pool_size", "Processes or threads the worker's pool runs tasks on",
            ["worker"], lambda: [([worker.nodename], float(worker.options.concurrency))]))
        try:
            self._server, _ = start_http_server(port, host, registry)
        except OSError as exc:
            from kernel.errors import ConfigurationError

            raise ConfigurationError(f"cannot serve metrics on {host}:{port} ({exc}); choose "
                                     f"another --metrics-port") from None
        log.info("metrics on http://%s:%d/metrics", host, self._server.server_port)

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            if os.environ.get(_ENV) == self.directory:
                del os.environ[_ENV]


class _Pruner:
    """Forgets the live gauges of children that exited, before each scrape is merged."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def collect(self) -> list[Any]:
        forget_dead(self.directory)
        return []
