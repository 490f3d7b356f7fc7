"""Events on every broadcasting broker (in-memory, SQLite, Redis): worker-online, heartbeats
and worker-offline always; task events with -E or once `enable_events` switches them on, with
Celery's fields, batched, and never a credential."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kernel import App
from kernel.events import EventReceiver, State
from kernel.worker import Worker
from tests.helpers import wait_for
from tests.worker.conftest import make_app

SECRET = "hunter2-in-a-setting"


def events_app(url: str, **config: Any) -> App:
    config.setdefault("worker_heartbeat_interval", 0.2)
    app = make_app("events", url, **config)

    @app.task(name="add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="boom")
    def boom() -> None:
        raise KeyError("boom")

    return app


def node(app: App) -> str:
    """A node name no other test's worker has (tests share one Redis)."""
    return f"ev@{app.conf.task_default_queue}"


class Collector:
    """The events of `app`'s worker (the events of all when `every`), read by a thread of
    its own."""

    def __init__(self, app: App, every: bool = False) -> None:
        import threading

        self.only = None if every else node(app)
        self.events: list[dict[str, Any]] = []
        # A monitor of its own, as in production: the worker's app closes its connections
        # when it stops, and a broadcast still unread on a shared one would go with them.
        self.app = App("monitor", broker=app.conf.broker_url, results=None)
        self.receiver = EventReceiver(self.app)
        self.receiver.listen()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for event in self.receiver.events(timeout=0.2):
                if self.only is None or event.get("hostname") == self.only:
                    self.events.append(event)

    def of(self, kind: str, **match: Any) -> list[dict[str, Any]]:
        return [e for e in list(self.events) if e["type"] == kind
                and all(e.get(k) == v for k, v in match.items())]

    def wait(self, kind: str, count: int = 1, timeout: float = 10, **match: Any,
             ) -> list[dict[str, Any]]:
        wait_for(lambda: len(self.of(kind, **match)) >= count, timeout,
                 f"no {count} {kind} event(s) {match or ''}; got "
                 f"{[e['type'] for e in self.events]}")
        return self.of(kind, **match)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.receiver.close()
        self.app.close()


@pytest.fixture
def collector(broker_url: str) -> Iterator[tuple[App, Collector]]:
    app = events_app(broker_url, worker_send_task_events=True,
                     transport_options={"sentinel_password": SECRET})
    seen = Collector(app)
    yield app, seen
    seen.close()
    app.close()


def start(app: App, **options: Any) -> Worker:
    worker = Worker(app, pool="threads", concurrency=2, nodename=node(app), shutdown_timeout=5,
                    **options)
    worker.start()
    return worker


def test_worker_online_heartbeats_and_offline_carry_celerys_fields(
        collector: tuple[App, Collector]) -> None:
    app, seen = collector
    worker = start(app)
    try:
        online = seen.wait("worker-online", hostname=node(app))[0]
        beats = seen.wait("worker-heartbeat", 2, hostname=node(app))
    finally:
        worker.stop()
    offline = seen.wait("worker-offline", hostname=node(app))[0]
    for event in (online, *beats, offline):
        assert event["freq"] == 0.2
        assert isinstance(event["active"], int) and isinstance(event["processed"], int)
        assert len(event["loadavg"]) == 3
        assert event["sw_ident"] == "py-kernel" and event["sw_sys"]
        assert isinstance(event["pid"], int) and isinstance(event["utcoffset"], float)
        assert isinstance(event["timestamp"], float)
    clocks = [e["clock"] for e in (online, *beats, offline)]
    assert clocks == sorted(clocks) and len(set(clocks)) == len(clocks), \
        "a worker's Lamport clock moves forward with each event"


def test_task_events_have_celerys_fields(collector: tuple[App, Collector]) -> None:
    app, seen = collector
    worker = start(app)
    try:
        ok = app.tasks["add"].delay(2, 3)
        bad = app.tasks["boom"].delay()
        received = seen.wait("task-received", uuid=ok.id)[0]
        started = seen.wait("task-started", uuid=ok.id)[0]
        succeeded = seen.wait("task-succeeded", uuid=ok.id)[0]
        failed = seen.wait("task-failed", uuid=bad.id)[0]
    finally:
        worker.stop()
    assert received["name"] == "add" and received["args"] == "(2, 3)"
    assert received["kwargs"] == "{}" and received["retries"] == 0
    assert received["root_id"] == ok.id and received["parent_id"] is None
    assert "eta" in received and "expires" in received
    assert received["hostname"] == started["hostname"] == node(app)
    assert succeeded["result"] == "5" and isinstance(succeeded["runtime"], float)
    assert failed["exception"] == "KeyError('boom')"
    assert "KeyError" in failed["traceback"]
    assert received["clock"] < started["clock"] < succeeded["clock"]


def test_task_events_are_off_by_default_and_switch_at_run_time(broker_url: str) -> None:
    app = events_app(broker_url)
    seen = Collector(app)
    worker = start(app)
    try:
        seen.wait("worker-online")
        quiet = app.tasks["add"].delay(1, 1)
        assert quiet.get(timeout=10) == 2
        replies = app.control.enable_events(reply=True, destination=[node(app)])
        assert replies == [{node(app): {"ok": "task events enabled"}}]
        loud = app.tasks["add"].delay(2, 2)
        seen.wait("task-succeeded", uuid=loud.id)
        app.control.disable_events(reply=True, destination=[node(app)])
        after = app.tasks["add"].delay(3, 3)
        assert after.get(timeout=10) == 6
        seen.wait("worker-heartbeat", len(seen.of("worker-heartbeat")) + 1)  # time passed
    finally:
        worker.stop()
        seen.close()
        app.close()
    assert not [e for e in seen.events if e.get("uuid") == quiet.id], \
        "task events were sent while they were off"
    assert not [e for e in seen.events if e.get("uuid") == after.id], \
        "disable_events did not stop task events"


def test_task_events_travel_in_batches(collector: tuple[App, Collector]) -> None:
    app, seen = collector
    raw = app.transport.subscribe(app.conf.event_exchange, "task.#")
    worker = start(app)
    try:
        results = [app.tasks["add"].delay(i, i) for i in range(60)]
        for r in results:
            r.get(timeout=20)
        seen.wait("task-succeeded", 60)
        messages: list[tuple[str, Any]] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and sum(
                len(b) if isinstance(b, list) else 1 for _, b in messages) < 180:
            messages += [(k, json.loads(e.body)) for k, e in raw.get(0.5)]
    finally:
        worker.stop()
        raw.close()
    events = sum(len(b) if isinstance(b, list) else 1 for _, b in messages)
    assert events >= 180, f"got {events} task events for 60 tasks"
    assert any(k == "task.multi" and isinstance(b, list) for k, b in messages), \
        "task events should go out as task.multi lists"
    assert len(messages) < events / 3, \
        f"{len(messages)} broadcasts for {events} events: a task paid for its own"


def test_task_sent_events_from_the_client(broker_url: str) -> None:
    app = events_app(broker_url, task_send_sent_event=True)
    seen = Collector(app, every=True)
    try:
        sent = app.tasks["add"].apply_async((4, 5), queue=app.conf.task_default_queue)
        event = seen.wait("task-sent", uuid=sent.id)[0]
    finally:
        seen.close()
        app.close()
    assert event["name"] == "add" and event["args"] == "(4, 5)"
    assert event["queue"] == app.conf.task_default_queue
    assert event["hostname"].startswith("gen")


def test_no_event_or_reply_carries_a_credential(collector: tuple[App, Collector]) -> None:
    app, seen = collector
    worker = start(app)
    try:
        app.tasks["add"].delay(1, 2).get(timeout=10)
        seen.wait("task-succeeded")
        inspect = app.control.inspect(destination=[node(app)], timeout=2)
        replies = [inspect.stats(), inspect.conf(with_defaults=True), inspect.report()]
    finally:
        worker.stop()
    assert all(r for r in replies), "the worker must answer stats, conf and report"
    text = json.dumps([seen.events, replies], default=repr)
    assert SECRET not in text


def test_state_follows_the_cluster(collector: tuple[App, Collector]) -> None:
    app, seen = collector
    state = State()
    worker = start(app)
    try:
        results = [app.tasks["add"].delay(i, 1) for i in range(5)]
        failed = app.tasks["boom"].delay()
        seen.wait("task-succeeded", 5)
        seen.wait("task-failed")
        seen.wait("worker-heartbeat", 1)
        for event in list(seen.events):
            state.event(event)
        assert node(app) in [w.hostname for w in state.alive_workers()]
    finally:
        worker.stop()
    seen.wait("worker-offline", hostname=node(app))
    for event in seen.of("worker-offline"):
        state.event(event)
    assert node(app) not in [w.hostname for w in state.alive_workers()], \
        "a worker that went offline is not alive"
    assert state.totals["SUCCESS"] == 5 and state.totals["FAILURE"] == 1
    task = state.tasks[results[0].id]
    assert (task.name, task.state, task.worker, task.result) == ("add", "SUCCESS", node(app),
                                                                 "1")
    assert state.tasks[failed.id].exception == "KeyError('boom')"
