"""An in-memory picture of a cluster, kept from its events (Celery's ``events.state``): workers
alive by heartbeat, tasks by id with their latest state, and totals per state.

``state = State(); for event in receiver.events(): state.event(event)``. Thread-safe: one
thread feeds it, others read (`snapshot`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

from kernel import states

#: receivers count a worker gone once it missed this many heartbeats (Celery: freq x 2).
HEARTBEAT_WINDOW = 2.0
#: tasks kept; the oldest are forgotten beyond this.
MAX_TASKS = 10_000

_TASK_STATES = {
    "task-sent": states.PENDING, "task-received": "RECEIVED", "task-started": states.STARTED,
    "task-succeeded": states.SUCCESS, "task-failed": states.FAILURE,
    "task-retried": states.RETRY, "task-rejected": states.REJECTED,
    "task-revoked": states.REVOKED,
}
_FINAL = frozenset({states.SUCCESS, states.FAILURE, states.REVOKED, states.REJECTED})
_WORKER_FIELDS = ("pid", "freq", "active", "processed", "loadavg", "sw_ident", "sw_ver",
                  "sw_sys", "clock")
_TASK_FIELDS = ("name", "args", "kwargs", "retries", "eta", "expires", "root_id", "parent_id",
                "result", "exception", "traceback", "runtime", "queue", "routing_key")


@dataclass
class WorkerInfo:
    hostname: str
    pid: int | None = None
    freq: float = 2.0
    active: int = 0
    processed: int = 0
    loadavg: list[float] = field(default_factory=list)
    sw_ident: str = ""
    sw_ver: str = ""
    sw_sys: str = ""
    clock: int = 0
    #: this host's time.time() when the last worker event arrived.
    last_heard: float = 0.0
    offline: bool = False
    #: task events seen from it, by type.
    events: Counter[str] = field(default_factory=Counter)

    @property
    def heartbeat_expires(self) -> float:
        return self.last_heard + self.freq * HEARTBEAT_WINDOW

    def alive(self, now: float | None = None) -> bool:
        return not self.offline and (time.time() if now is None else now) < self.heartbeat_expires


@dataclass
class TaskInfo:
    uuid: str
    state: str = states.PENDING
    name: str | None = None
    worker: str | None = None
    args: str | None = None
    kwargs: str | None = None
    retries: int = 0
    eta: str | None = None
    expires: str | None = None
    root_id: str | None = None
    parent_id: str | None = None
    result: str | None = None
    exception: str | None = None
    traceback: str | None = None
    runtime: float | None = None
    queue: str | None = None
    routing_key: str | None = None
    #: event type → its timestamp (``received``, ``started``, ``succeeded``, ...).
    times: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "times": dict(self.times)}


class State:
    def __init__(self, max_tasks: int = MAX_TASKS) -> None:
        self.max_tasks = max_tasks
        self.workers: dict[str, WorkerInfo] = {}
        self.tasks: OrderedDict[str, TaskInfo] = OrderedDict()
        #: tasks by their latest state, counted as events arrive (forgotten tasks included).
        self.totals: Counter[str] = Counter()
        self.event_count = 0
        self._lock = threading.Lock()

    def event(self, event: dict[str, Any]) -> None:
        """Take one event (as `EventReceiver` yields them); unknown types only count."""
        kind = event.get("type", "")
        with self._lock:
            self.event_count += 1
            if kind.startswith("worker-"):
                self._worker_event(kind, event)
            elif kind in _TASK_STATES and isinstance(event.get("uuid"), str):
                self._task_event(kind, event)

    def _worker(self, hostname: str) -> WorkerInfo:
        worker = self.workers.get(hostname)
        if worker is None:
            worker = self.workers[hostname] = WorkerInfo(hostname)
        return worker

    def _worker_event(self, kind: str, event: dict[str, Any]) -> None:
        worker = self._worker(str(event.get("hostname", "")))
        for name in _WORKER_FIELDS:
            if name in event and event[name] is not None:
                setattr(worker, name, event[name])
        worker.last_heard = float(event.get("local_received") or time.time())
        worker.offline = kind == "worker-offline"

    def _task_event(self, kind: str, event: dict[str, Any]) -> None:
        uuid = event["uuid"]
        new = _TASK_STATES[kind]
        task = self.tasks.get(uuid)
        if task is None:
            task = self.tasks[uuid] = TaskInfo(uuid, new)
            self.totals[new] += 1
            while len(self.tasks) > self.max_tasks:
                self.tasks.popitem(last=False)
        else:
            self.tasks.move_to_end(uuid)
            # Events can arrive out of order (two processes, two batches): a final state
            # stays final.
            if task.state != new and (task.state not in _FINAL or new in _FINAL):
                self.totals[task.state] -= 1
                self.totals[new] += 1
                task.state = new
        for name in _TASK_FIELDS:
            if event.get(name) is not None:
                setattr(task, name, event[name])
        hostname = event.get("hostname")
        if kind != "task-sent" and isinstance(hostname, str):
            task.worker = hostname
            self._worker(hostname).events[kind] += 1
        timestamp = event.get("timestamp")
        task.times[kind[len("task-"):]] = (float(timestamp) if isinstance(timestamp, (int, float))
                                          else time.time())

    # ------------------------------------------------------------------ reading

    def alive_workers(self, now: float | None = None) -> list[WorkerInfo]:
        with self._lock:
            return [w for w in self.workers.values() if w.alive(now)]

    def snapshot(self, tasks: int = 50) -> tuple[list[WorkerInfo], list[TaskInfo],
                                                 dict[str, int]]:
        """Workers, the newest `tasks` tasks (newest first) and the totals, copied."""
        with self._lock:
            newest = list(self.tasks.values())[-tasks:][::-1] if tasks else []
            return (list(self.workers.values()), [TaskInfo(**t.as_dict()) for t in newest],
                    {k: v for k, v in self.totals.items() if v > 0})
