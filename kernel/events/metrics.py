"""Prometheus metrics kept from events (prometheus_client): one set of definitions for a
worker's own ``/metrics`` (``kernel worker --metrics-port``; fed by the events its processes
build, sent or not) and for a whole cluster's (``kernel events --prometheus``; fed by the
event stream, as Flower's ``/metrics``).

Every metric carries the worker's node name. A prefork worker's children count in
prometheus_client's multiprocess mode (a directory of their files, which the parent serves
merged), so the work of a child that exited still counts.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

    from kernel.events.state import State

#: task ids remembered between their task-received and their end (name, when received).
REMEMBER = 10_000
_FINAL = {"task-succeeded": "SUCCESS", "task-failed": "FAILURE", "task-retried": "RETRY",
          "task-rejected": "REJECTED", "task-revoked": "REVOKED"}
#: seconds: from a millisecond task to a long batch job.
BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
           300.0, 900.0, 3600.0)
#: the local-only notes (`EventDispatcher.note`) a worker's metrics count.
BROKER_ERROR = "kernel-broker-error"
DEAD_LETTERED = "kernel-dead-lettered"


class EventMetrics:
    """Counts events into `registry`: ``metrics.event(event)`` for each one."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.registry = registry
        self.tasks = Counter("kernel_tasks", "Tasks ended, by task name and final state",
                             ["worker", "name", "state"], registry=registry)
        self.runtime = Histogram("kernel_task_runtime_seconds", "How long tasks ran",
                                 ["worker", "name"], buckets=BUCKETS, registry=registry)
        self.queue_wait = Histogram("kernel_task_queue_wait_seconds",
                                    "How long tasks waited in the worker, from received to "
                                    "started", ["worker", "name"], buckets=BUCKETS,
                                    registry=registry)
        self.active = Gauge("kernel_tasks_active", "Tasks running now", ["worker"],
                            registry=registry, multiprocess_mode="livesum")
        self.prefetched = Gauge("kernel_tasks_prefetched",
                                "Tasks received and waiting to start", ["worker"],
                                registry=registry, multiprocess_mode="livesum")
        self.reconnects = Counter("kernel_broker_reconnects",
                                  "Times the worker lost the broker and tried again",
                                  ["worker"], registry=registry)
        self.dead = Counter("kernel_messages_dead_lettered",
                            "Messages sent to a dead-letter queue (or dropped as undecodable)",
                            ["worker", "queue"], registry=registry)
        self._tasks: OrderedDict[str, tuple[str, float, bool]] = OrderedDict()
        self._lock = threading.Lock()

    def event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        worker = str(event.get("hostname", ""))
        if kind == BROKER_ERROR:
            self.reconnects.labels(worker).inc()
        elif kind == DEAD_LETTERED:
            self.dead.labels(worker, str(event.get("queue", ""))).inc()
        uuid = event.get("uuid")
        if not isinstance(uuid, str):
            return
        stamp = event.get("timestamp")
        now = float(stamp) if isinstance(stamp, (int, float)) else time.time()
        with self._lock:
            if kind == "task-received":
                self._tasks[uuid] = (str(event.get("name") or "unknown"), now, False)
                while len(self._tasks) > REMEMBER:
                    self._tasks.popitem(last=False)
                self.prefetched.labels(worker).inc()
            elif kind == "task-started":
                name, received, _ = self._tasks.get(uuid, ("unknown", now, False))
                if uuid in self._tasks:
                    self._tasks[uuid] = (name, received, True)
                    self.prefetched.labels(worker).dec()
                    self.queue_wait.labels(worker, name).observe(max(0.0, now - received))
                self.active.labels(worker).inc()
            elif kind in _FINAL:
                name, _, started = self._tasks.pop(uuid, ("unknown", now, None))
                if started:
                    self.active.labels(worker).dec()
                elif started is False:  # ended without running (revoked, rejected)
                    self.prefetched.labels(worker).dec()
                self.tasks.labels(worker, name, _FINAL[kind]).inc()
                runtime = event.get("runtime")
                if isinstance(runtime, (int, float)):
                    self.runtime.labels(worker, name).observe(runtime)


class ClusterCollector:
    """Workers as the event stream shows them (``kernel events --prometheus``): up by
    heartbeat, running and processed as their heartbeats say."""

    def __init__(self, state: State) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        up = GaugeMetricFamily("kernel_worker_up", "1 while the worker's heartbeats arrive",
                               labels=["worker"])
        active = GaugeMetricFamily("kernel_worker_active_tasks",
                                   "Tasks running, as the worker's last heartbeat said",
                                   labels=["worker"])
        processed = CounterMetricFamily("kernel_worker_processed",
                                        "Tasks the worker ended, as its last heartbeat said",
                                        labels=["worker"])
        workers, _, _ = self.state.snapshot(tasks=0)
        now = time.time()
        for w in workers:
            up.add_metric([w.hostname], 1.0 if w.alive(now) else 0.0)
            active.add_metric([w.hostname], float(w.active))
            processed.add_metric([w.hostname], float(w.processed))
        yield from (up, active, processed)


class ValueCollector:
    """Gauges read when scraped: ``ValueCollector("kernel_pool_size", help, labels, fn)``
    where `fn` returns the label values and the value."""

    def __init__(self, name: str, documentation: str, labels: list[str],
                 read: Callable[[], list[tuple[list[str], float]]]) -> None:
        self.name, self.documentation, self.labels, self.read = name, documentation, labels, read

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labels)
        for labels, value in self.read():
            family.add_metric(labels, value)
        yield family


_PID = re.compile(r"_(\d+)\.db$")


def forget_dead(path: str) -> None:
    """Drop the live gauges of processes in multiprocess directory `path` that are gone."""
    from prometheus_client import multiprocess

    for name in os.listdir(path):
        match = _PID.search(name)
        if match is None:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
        except PermissionError:
            pass  # alive, another user's
