"""Remote control on every broadcasting broker (in-memory, SQLite, Redis), against in-process
workers: targeting, every inspect command, commands that change what the worker does, and
requests that are malformed in every way a sender can get wrong."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kernel import App
from kernel.message import Envelope
from kernel.worker import Worker
from kernel.worker.remote import COMMANDS
from tests.helpers import wait_for
from tests.worker.conftest import make_app

INSPECT = ("ping", "stats", "active_queues", "registered", "active", "reserved", "scheduled",
           "revoked", "conf", "query_task", "report", "clock")
CONTROL = ("revoke", "terminate", "rate_limit", "time_limit", "enable_events",
           "disable_events", "heartbeat", "pool_grow", "pool_shrink", "pool_restart",
           "autoscale", "shutdown", "add_consumer", "cancel_consumer")


def control_app(url: str) -> App:
    app = make_app("ctl", url)
    gate = threading.Event()
    runs: list[tuple[str, float]] = []

    @app.task(name="hold")
    def hold() -> str:
        gate.wait(20)
        return "held"

    @app.task(name="stamp")
    def stamp(tag: str) -> str:
        runs.append((tag, time.monotonic()))
        return tag

    app.gate, app.runs = gate, runs  # type: ignore[attr-defined]
    return app


def name(app: App, prefix: str = "a1") -> str:
    """A node name no other test's worker has (tests share one Redis)."""
    return f"{prefix}@{app.conf.task_default_queue}"


@pytest.fixture
def node(broker_url: str) -> Iterator[tuple[App, Worker]]:
    app = control_app(broker_url)
    worker = Worker(app, pool="threads", concurrency=2, nodename=name(app), shutdown_timeout=5)
    worker.start()
    yield app, worker
    app.gate.set()  # type: ignore[attr-defined]
    worker.stop()
    app.close()


def answer(app: App, command: str, arguments: dict[str, Any] | None = None) -> Any:
    node = name(app)
    replies = app.control.broadcast(command, arguments, destination=[node], reply=True,
                                    timeout=3)
    assert len(replies) == 1, f"{command}: {len(replies)} replies"
    return replies[0][node]


def test_every_command_of_celery_is_known() -> None:
    missing = [c for c in (*INSPECT, *CONTROL) if c not in COMMANDS]
    assert not missing, f"commands without a handler: {missing}"


def test_targeting_by_destination_glob_and_pcre(broker_url: str) -> None:
    app = control_app(broker_url)
    a1, b1 = name(app), name(app, "b1")
    other = Worker(app, pool="threads", concurrency=1, nodename=b1, shutdown_timeout=5)
    first = Worker(app, pool="threads", concurrency=1, nodename=a1, shutdown_timeout=5)
    first.start()
    other.start()
    try:
        def nodes(**kw: Any) -> set[str]:
            return {n for r in app.control.ping(timeout=1.5, **kw) for n in r
                    if n.endswith(app.conf.task_default_queue)}

        assert nodes() == {a1, b1}
        assert nodes(destination=[b1]) == {b1}
        assert nodes(pattern=f"a*@{app.conf.task_default_queue}", matcher="glob") == {a1}
        assert nodes(pattern=r"^b\d@q-", matcher="pcre") == {b1}
        assert nodes(destination=["nobody@ctl"]) == set()
        started = time.monotonic()
        assert app.control.ping(destination=[a1], timeout=5) == [{a1: {"ok": "pong"}}]
        assert time.monotonic() - started < 2.5, "once every named node answered, stop waiting"
    finally:
        first.stop()
        other.stop()
        app.close()


def test_inspect_answers_what_flower_reads(node: tuple[App, Worker]) -> None:
    app, worker = node
    inspect = app.control.inspect(destination=[name(app)], timeout=3)
    stats = inspect.stats()[name(app)]  # type: ignore[index]
    for key in ("total", "pid", "clock", "uptime", "pool", "broker", "prefetch_count",
                "rusage"):
        assert key in stats, f"stats has no {key!r} (Flower's worker page needs it)"
    assert stats["pool"]["max-concurrency"] == 2
    queues = inspect.active_queues()[name(app)]  # type: ignore[index]
    assert [q["name"] for q in queues] == [app.conf.task_default_queue]
    for key in ("exclusive", "durable", "routing_key", "no_ack", "alias", "queue_arguments",
                "binding_arguments", "auto_delete"):
        assert key in queues[0]
    assert inspect.registered()[name(app)] == ["hold", "stamp"]  # type: ignore[index]
    described = inspect.registered("max_retries", "rate_limit")[name(app)]  # type: ignore
    assert described[0] == "hold [max_retries=3]", "attributes that are not set are left out"
    assert isinstance(inspect.clock()[name(app)]["clock"], int)  # type: ignore[index]
    assert "kernel" in inspect.report()[name(app)]["ok"]  # type: ignore[index]
    conf = inspect.conf()[name(app)]  # type: ignore[index]
    assert conf["task_default_queue"] == app.conf.task_default_queue
    assert "worker_pool" not in conf, "conf lists only settings that differ from defaults"
    assert "worker_pool" in inspect.conf(with_defaults=True)[name(app)]  # type: ignore[index]


def test_active_reserved_query_task_and_revoked(node: tuple[App, Worker]) -> None:
    app, worker = node
    running = [app.tasks["hold"].delay() for _ in range(2)]
    waiting = app.tasks["stamp"].delay("later")
    inspect = app.control.inspect(destination=[name(app)], timeout=3)
    wait_for(lambda: len((inspect.active() or {}).get(name(app), [])) == 2, 10,
             "both hold tasks should show as active")
    active = inspect.active()[name(app)]  # type: ignore[index]
    assert {a["id"] for a in active} == {r.id for r in running}
    assert all(a["name"] == "hold" and a["hostname"] == name(app) and a["time_start"]
               for a in active)
    wait_for(lambda: [r["id"] for r in (inspect.reserved() or {}).get(name(app), [])]
             == [waiting.id], 10, "the stamp task should wait as reserved")
    found = inspect.query_task(running[0].id, waiting.id)[name(app)]  # type: ignore[index]
    assert found[running[0].id][0] == "active" and found[waiting.id][0] == "reserved"
    assert answer(app, "revoke", {"task_id": waiting.id}) == {
        "ok": f"tasks {waiting.id} flagged as revoked"}
    assert waiting.id in inspect.revoked()[name(app)]  # type: ignore[index]
    app.gate.set()  # type: ignore[attr-defined]
    wait_for(lambda: waiting.state == "REVOKED", 10, "a revoked reserved task never runs")
    assert not [tag for tag, _ in app.runs]  # type: ignore[attr-defined]


def test_rate_limit_applies_at_once(node: tuple[App, Worker]) -> None:
    app, worker = node
    assert answer(app, "rate_limit", {"task_name": "stamp", "rate_limit": "2/s"}) == {
        "ok": "rate limit of stamp set to 2/s"}
    results = [app.tasks["stamp"].delay(str(i)) for i in range(5)]
    for r in results:
        r.get(timeout=20)
    times = sorted(t for _, t in app.runs)  # type: ignore[attr-defined]
    assert times[-1] - times[0] >= 1.4, f"5 tasks at 2/s took {times[-1] - times[0]:.2f} s"
    assert answer(app, "rate_limit", {"task_name": "stamp", "rate_limit": None}) == {
        "ok": "rate limit of stamp disabled"}
    assert answer(app, "rate_limit", {"task_name": "nope", "rate_limit": "1/s"}) == {
        "error": "unknown task 'nope'"}
    assert "error" in answer(app, "rate_limit", {"task_name": "stamp", "rate_limit": "fast"})


def test_pool_grow_and_shrink_change_the_pool(node: tuple[App, Worker]) -> None:
    app, worker = node
    assert answer(app, "pool_grow", {"n": 2}) == {"ok": "pool will grow by 2"}
    assert answer(app, "stats")["pool"]["max-concurrency"] == 4
    running = [app.tasks["hold"].delay() for _ in range(4)]
    wait_for(lambda: len(answer(app, "active")) == 4, 10, "a grown pool runs four at once")
    app.gate.set()  # type: ignore[attr-defined]
    for r in running:
        r.get(timeout=10)
    assert answer(app, "pool_shrink", {"n": 3}) == {"ok": "pool will shrink by 3"}
    assert answer(app, "stats")["pool"]["max-concurrency"] == 1
    assert "error" in answer(app, "pool_shrink", {"n": 1}), "a pool never shrinks to nothing"


def test_cancel_and_add_consumer(node: tuple[App, Worker]) -> None:
    app, worker = node
    extra = f"{app.conf.task_default_queue}-extra"
    assert answer(app, "add_consumer", {"queue": extra}) == {"ok": f"add consumer {extra}"}
    assert app.tasks["stamp"].apply_async(("one",), queue=extra).get(timeout=10) == "one"
    assert answer(app, "cancel_consumer", {"queue": extra}) == {
        "ok": f"no longer consuming from {extra}"}
    assert [q["name"] for q in answer(app, "active_queues")] == [app.conf.task_default_queue]
    consumer = worker.consumer
    assert consumer is not None
    left = app.tasks["stamp"].apply_async(("two",), queue=extra)
    seen = consumer.empty_fetches
    wait_for(lambda: consumer.empty_fetches >= seen + 2, 10, "the worker stopped fetching")
    assert app.transport.size(extra) == 1 and left.state == "PENDING", \
        "a cancelled queue is not consumed"
    assert "error" in answer(app, "cancel_consumer",
                             {"queue": app.conf.task_default_queue}), \
        "the last queue cannot be cancelled"


def test_time_limit_and_events_switch_are_set(node: tuple[App, Worker]) -> None:
    app, worker = node
    assert answer(app, "time_limit", {"task_name": "stamp", "soft": 1.5, "hard": 2}) == {
        "ok": "time limits of stamp set to soft 1.5, hard 2"}
    assert (app.tasks["stamp"].options.soft_time_limit,
            app.tasks["stamp"].options.time_limit) == (1.5, 2)
    assert answer(app, "enable_events") == {"ok": "task events enabled"}
    assert app.events.task_events
    assert answer(app, "disable_events") == {"ok": "task events disabled"}
    assert not app.events.task_events


def test_unknown_commands_and_wrong_arguments_get_error_replies(
        node: tuple[App, Worker]) -> None:
    app, _ = node
    assert "unknown command 'no_such_cmd'" in answer(app, "no_such_cmd")["error"]
    assert answer(app, "pool_grow", {"n": "3"}) == {
        "error": "argument 'n' of pool_grow must be int, got str"}
    assert "error" in answer(app, "revoke", {"task_id": [1, 2]})
    assert "error" in answer(app, "revoke", {"task_id": "x", "signal": "SIGNOPE"})
    assert answer(app, "autoscale", {"max": 1, "min": 4}) == {
        "error": "autoscale needs max and min with max >= min >= 1"}
    assert "worker_pool_restarts" in answer(app, "pool_restart")["error"]
    assert "error" in answer(app, "pool_grow", {"n": 0})
    assert answer(app, "ping", {"unused": "ignored"}) == {"ok": "pong"}


@pytest.mark.parametrize("body", [
    b"not json", b"[1, 2, 3]", b'{"arguments": {}}', b'{"method": 42}',
    b'{"method": "ping", "destination": "a1@ctl"}', b"x" * (2 * 1024 * 1024),
    b'{"method": "ping", "arguments": [1], "ticket": "t", "reply_to": {"exchange": '
    b'"somewhere.else", "routing_key": "k"}}'])
def test_malformed_requests_are_dropped_and_the_worker_goes_on(
        node: tuple[App, Worker], body: bytes) -> None:
    app, worker = node
    namespace = app.conf.control_exchange
    app.transport.broadcast(f"{namespace}.pidbox", "", Envelope(body, {"clock": "x"}))
    assert answer(app, "ping") == {"ok": "pong"}, "the mailbox must outlive a bad request"
    assert app.tasks["stamp"].delay("after").get(timeout=10) == "after"


def test_late_and_foreign_replies_are_ignored(node: tuple[App, Worker]) -> None:
    app, _ = node
    seen: list[dict[str, Any]] = []
    control = app.control
    real = control._collect

    def with_noise(subscription: Any, ticket: str, *args: Any) -> Any:
        # Another call's reply (as one that came after its caller gave up) lands in this
        # caller's queue before the real one.
        key = subscription_key[0]
        app.transport.broadcast(f"reply.{app.conf.control_exchange}.pidbox", key, Envelope(
            json.dumps({"late@ctl": {"ok": "pong"}}).encode(), {"ticket": "old-ticket"}))
        return real(subscription, ticket, *args)

    subscription_key: list[str] = []
    original_subscribe = app.transport.subscribe

    def remember(exchange: str, pattern: str = "#") -> Any:
        subscription_key.append(pattern)
        return original_subscribe(exchange, pattern)

    app.transport.subscribe = remember  # type: ignore[method-assign]
    control._collect = with_noise  # type: ignore[method-assign]
    replies = control.broadcast("ping", reply=True, timeout=1.5, callback=seen.append)
    assert [r for r in replies if name(app) in r] == [{name(app): {"ok": "pong"}}]
    assert replies == seen, "the callback sees each reply kept, and nothing else"
    assert not [r for r in replies if "late@ctl" in r], "a reply to another ticket was kept"
