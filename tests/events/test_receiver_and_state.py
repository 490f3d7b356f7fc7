"""What a monitor relies on, without a worker: the receiver drops what is not an event and
goes on, the cluster State keeps the latest truth whatever order events arrive in, the views
(dump line, terminal view) and the metrics count what the events say."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from rich.console import Console

from kernel import App
from kernel.cli.events import dump_line, render
from kernel.events import EventReceiver, State
from kernel.events.event import Clock, envelope, make
from kernel.events.metrics import ClusterCollector, EventMetrics
from kernel.message import Envelope


@pytest.fixture
def app() -> Iterator[App]:
    app = App("events-unit", broker=f"memory://{uuid.uuid4().hex}")
    yield app
    app.close()


def send(app: App, body: bytes, content_type: str = "application/json") -> None:
    app.transport.broadcast(app.conf.event_exchange, "task.x",
                            Envelope(body, {"hostname": "w"}, content_type=content_type))


def test_bad_messages_are_dropped_and_the_receiver_goes_on(app: App,
                                                           caplog: pytest.LogCaptureFixture,
                                                           ) -> None:
    good = make("task-succeeded", "w@h", 7, uuid="u1", result="1", runtime=0.1)
    with EventReceiver(app) as receiver:
        for body in (b"not json", b'"a string"', b'[{"type": 1}]', b'{"no": "type"}',
                     b'{"type": "task-started", "hostname": 5}',
                     b'{"type": "task-started", "timestamp": "noon"}',
                     b"[" + b"1," * (3 * 1024 * 1024) + b"1]"):
            send(app, body)
        send(app, b"{}", content_type="application/x-python-serialize")
        app.transport.broadcast(app.conf.event_exchange, "task.succeeded",
                                envelope(good, "w@h"))
        got = list(receiver.events(timeout=5, limit=1))
    assert [e["uuid"] for e in got] == ["u1"]
    assert receiver.dropped == 8
    assert "over 4,194,304" in caplog.text and "not JSON" in caplog.text
    assert "content type 'application/x-python-serialize'" in caplog.text


def test_handlers_by_type_and_a_failing_one_does_not_stop_the_rest(app: App) -> None:
    seen: list[str] = []

    def broken(event: dict[str, object]) -> None:
        raise RuntimeError("handler bug")

    with EventReceiver(app, {"task-failed": broken, "*": lambda e: seen.append(e["type"])}
                       ) as receiver:
        batch = [make("task-failed", "w@h", 1, uuid="a"), make("task-received", "w@h", 2,
                                                                uuid="b")]
        app.transport.broadcast(app.conf.event_exchange, "task.multi", envelope(batch, "w@h"))
        assert len(list(receiver.events(timeout=5, limit=2))) == 2
    assert seen == ["task-failed", "task-received"]
    assert receiver.clock.value > 2, "the receiver's clock moves past what it saw"


def test_clock_ignores_what_is_not_a_number() -> None:
    clock = Clock()
    assert clock.forward() == 1
    assert clock.adjust(10) == 11
    assert clock.adjust("12") == 11 and clock.adjust(True) == 11 and clock.adjust(None) == 11


def event(kind: str, uuid: str = "t1", **fields: object) -> dict[str, object]:
    return {"type": kind, "uuid": uuid, "hostname": "w@h", "timestamp": 100.0,
            "local_received": 100.0, **fields}


def test_state_keeps_the_final_state_when_events_arrive_out_of_order() -> None:
    state = State()
    state.event(event("task-succeeded", result="3", runtime=0.5))
    state.event(event("task-started"))
    state.event(event("task-received", name="proj.add", args="(1, 2)"))
    task = state.tasks["t1"]
    assert (task.state, task.name, task.args, task.result) == ("SUCCESS", "proj.add", "(1, 2)",
                                                               "3")
    assert dict(state.totals) == {"SUCCESS": 1}
    state.event(event("task-received", uuid="t2", name="proj.add"))
    state.event(event("task-retried", uuid="t2", exception="Boom()"))
    state.event(event("task-received", uuid="t2"))
    state.event(event("task-failed", uuid="t2", exception="Boom()"))
    assert state.tasks["t2"].state == "FAILURE"
    assert {k: v for k, v in state.totals.items() if v} == {"SUCCESS": 1, "FAILURE": 1}


def test_state_forgets_the_oldest_tasks_beyond_its_bound() -> None:
    state = State(max_tasks=3)
    for n in range(5):
        state.event(event("task-received", uuid=f"t{n}"))
    assert list(state.tasks) == ["t2", "t3", "t4"]
    assert state.totals["RECEIVED"] == 5, "totals count every task seen"


def test_a_worker_is_alive_for_two_heartbeat_periods() -> None:
    state = State()
    state.event({"type": "worker-heartbeat", "hostname": "w@h", "freq": 2.0, "active": 1,
                 "processed": 10, "local_received": 1000.0})
    (worker,) = state.workers.values()
    assert worker.alive(1003.9) and not worker.alive(1004.1)
    state.event({"type": "worker-offline", "hostname": "w@h", "local_received": 1001.0})
    assert not worker.alive(1001.5), "offline is offline at once"


def test_the_dump_line_and_the_view_show_what_happened() -> None:
    line = dump_line({"type": "task-succeeded", "hostname": "w@h", "timestamp": 0.0,
                      "uuid": "u1", "result": "3", "clock": 4, "pid": 1})
    assert line.endswith("w@h task-succeeded uuid='u1' result='3'")
    state = State()
    state.event({"type": "worker-heartbeat", "hostname": "w@h", "freq": 2.0, "active": 1,
                 "processed": 41, "loadavg": [0.5, 0.25, 0.1]})
    state.event(event("task-received", name="proj.add"))
    state.event(event("task-succeeded", runtime=0.25))
    out = Console(record=True, width=160)
    out.print(render(state, {"w@h": "prefork x2"}))
    text = out.export_text()
    for expected in ("w@h", "online", "prefork x2", "0.50 0.25 0.10", "41", "proj.add",
                     "SUCCESS", "0.250 s", "SUCCESS: 1"):
        assert expected in text, f"{expected!r} missing from the view:\n{text}"


def test_metrics_count_tasks_by_name_and_state_and_workers_from_heartbeats() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    metrics = EventMetrics(registry)
    state = State()
    registry.register(ClusterCollector(state))
    for e in (event("task-received", name="proj.add", timestamp=100.0),
              event("task-started", timestamp=100.5),
              event("task-succeeded", runtime=0.25),
              event("task-received", uuid="t2", name="proj.add"),
              event("task-revoked", uuid="t2"),
              {"type": "worker-heartbeat", "hostname": "w@h", "freq": 2.0, "active": 0,
               "processed": 7}):
        metrics.event(e)
        state.event(e)
    text = generate_latest(registry).decode()
    assert 'kernel_tasks_total{name="proj.add",state="SUCCESS",worker="w@h"} 1.0' in text
    assert 'kernel_tasks_total{name="proj.add",state="REVOKED",worker="w@h"} 1.0' in text
    assert 'kernel_task_runtime_seconds_count{name="proj.add",worker="w@h"} 1.0' in text
    assert 'kernel_task_queue_wait_seconds_sum{name="proj.add",worker="w@h"} 0.5' in text
    assert 'kernel_tasks_active{worker="w@h"} 0.0' in text
    assert 'kernel_tasks_prefetched{worker="w@h"} 0.0' in text
    assert 'kernel_worker_up{worker="w@h"} 1.0' in text
    assert 'kernel_worker_processed_total{worker="w@h"} 7.0' in text
    assert json.dumps(state.snapshot()[1][0].as_dict())  # plain data, for --json consumers


def test_the_grafana_dashboard_asks_for_metrics_that_exist() -> None:
    import re
    from pathlib import Path

    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    metrics = EventMetrics(registry)
    state = State()
    registry.register(ClusterCollector(state))
    for e in (event("task-received", name="n"), event("task-started"),
              event("task-succeeded", runtime=1.0),
              {"type": "kernel-broker-error", "hostname": "w@h"},
              {"type": "kernel-dead-lettered", "hostname": "w@h", "queue": "q"},
              {"type": "worker-heartbeat", "hostname": "w@h", "freq": 2.0}):
        metrics.event(e)
        state.event(e)
    served = set(re.findall(r"^(kernel_\w+)", generate_latest(registry).decode(), re.M))
    served.add("kernel_pool_size")  # read from the worker when scraped
    dashboard = Path(__file__).parents[2] / "contrib" / "grafana" / "kernel-dashboard.json"
    asked = set(re.findall(r"kernel_\w+", dashboard.read_text()))
    assert asked and asked <= served, f"the dashboard asks for {sorted(asked - served)}"
