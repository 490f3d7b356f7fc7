"""One bad message never stops a worker: a message whose headers, envelope or body cannot be
read goes to the dead-letter queue with the reason, alone; the messages fetched beside it run;
the fetcher keeps fetching. On SQLite (a real file and real worker threads), with the bad
bytes written where a broken producer would put them."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel import App
from kernel.interfaces import Outgoing
from kernel.message import Envelope
from kernel.testing.transport import wait_for
from kernel.testing.workers import running_worker

VALID = b'[[2, 3], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]'


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    app = App("bad", broker=url, results=url, config={"task_default_queue": "q"})

    @app.task(name="add")
    def add(x: int, y: int) -> int:
        return x + y

    yield app
    app.close()


def envelope(task_id: str, body: bytes = VALID, **headers: object) -> Envelope:
    return Envelope(body, {"lang": "py", "task": "add", "id": task_id, **headers},
                    {"correlation_id": task_id})


def raw_insert(app: App, payload: bytes) -> None:
    """What a producer that is not kernel's might write: bytes kernel's publish never would."""
    app.transport.size("q")  # the transport makes its tables
    path = app.conf.broker_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO kernel_messages (queue, priority, not_before, ready, "
                     "payload) VALUES ('q', 0, 0, 1, ?)", (payload,))


BAD_HEADERS = [
    ({"retries": float("inf")}, "'retries' must be a whole number"),
    ({"timelimit": "soon"}, "'timelimit' must be"),
    ({"eta": 12}, "bad timestamp"),
]


@pytest.mark.parametrize(("headers", "reason"), BAD_HEADERS)
def test_a_message_with_a_bad_header_is_dead_lettered_and_the_worker_goes_on(
        app: App, headers: dict[str, object], reason: str) -> None:
    app.transport.publish([Outgoing("q", envelope("bad", **headers)),
                           Outgoing("q", envelope("good-1"))])
    with running_worker(app, concurrency=2) as worker:
        assert app.AsyncResult("good-1").get(timeout=10) == 5, "fetched beside it, it runs"
        [dead] = wait_for(lambda: app.transport.dead_letters("q"), 10, "the dead letter")
        assert dead.envelope.headers["id"] == "bad" and reason in dead.extra["reason"]
        assert app.tasks["add"].delay(1, 1).get(timeout=10) == 2, "the fetcher goes on"
        assert worker.consumer is not None and worker.consumer.alive()


def test_undecodable_envelopes_are_dead_lettered_alone_at_fetch(app: App) -> None:
    raw_insert(app, b'{"body": ' + b"[" * 50_000 + b"]" * 50_000 + b"}")
    raw_insert(app, b"\xff not json")
    app.transport.publish([Outgoing("q", envelope("good-2"))])
    with running_worker(app, concurrency=1) as worker:
        assert app.AsyncResult("good-2").get(timeout=10) == 5
        dead = wait_for(lambda: len(app.transport.dead_letters("q")) == 2
                        and app.transport.dead_letters("q"), 10, "two dead letters")
        assert all("JSON envelope" in d.extra["reason"] for d in dead), [
            d.extra["reason"] for d in dead]
        assert worker.consumer is not None and worker.consumer.alive()


def test_a_body_that_does_not_decode_is_rejected_with_its_reason(app: App) -> None:
    app.transport.publish([Outgoing("q", envelope("deep", b"[" * 50_000 + b"]" * 50_000)),
                           Outgoing("q", envelope("bad-canvas", b'[[], {}, {"chain": [1]}]')),
                           Outgoing("q", envelope("good-3"))])
    with running_worker(app, concurrency=2):
        assert app.AsyncResult("good-3").get(timeout=10) == 5
        for task_id, reason in (("deep", "not valid JSON"), ("bad-canvas", "signature")):
            result = app.AsyncResult(task_id)
            wait_for(lambda r=result: r.state == "REJECTED", 10, f"{task_id} REJECTED")
            assert reason in str(result.result), result.result
        wait_for(lambda: len(app.transport.dead_letters("q")) == 2, 10, "two dead letters")


REFUSED_CONTENT = [
    # (content type, compression header, body, reason): what accept_content does not allow.
    ("application/x-python-serialize", None, b"\x80\x04N.", "refusing content type"),
    ("application/data", None, b"c2lnbmVk", "refusing content type 'application/data'"),
    ("application/json", "application/x-unknown", VALID, "no compressor installed"),
]


@pytest.mark.parametrize(("content_type", "compression", "body", "reason"), REFUSED_CONTENT)
def test_content_outside_accept_content_is_dead_lettered_with_the_reason(
        app: App, content_type: str, compression: str | None, body: bytes, reason: str,
        caplog: pytest.LogCaptureFixture) -> None:
    headers = {"compression": compression} if compression else {}
    bad = Envelope(body, {"lang": "py", "task": "add", "id": "refused", **headers},
                   {"correlation_id": "refused"}, content_type=content_type)
    app.transport.publish([Outgoing("q", bad), Outgoing("q", envelope("good-4"))])
    with running_worker(app, concurrency=1) as worker:
        assert app.AsyncResult("good-4").get(timeout=10) == 5
        [dead] = wait_for(lambda: app.transport.dead_letters("q"), 10, "the dead letter")
        assert dead.envelope.headers["id"] == "refused" and reason in dead.extra["reason"]
        assert any("refused" in r.getMessage() and reason in r.getMessage()
                   for r in caplog.records), "the reason is in the log"
        assert worker.consumer is not None and worker.consumer.alive()


def test_a_worker_thread_that_keeps_failing_stops_the_worker_non_zero(
        app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from kernel import supervision
    from kernel.worker import Worker
    from kernel.worker.consumer import Consumer

    monkeypatch.setattr(supervision, "PAUSE", 0.01)
    failures: list[float] = []

    def broken(self: Consumer) -> None:
        failures.append(time.monotonic())
        raise RuntimeError("a bug in a loop")

    monkeypatch.setattr(Consumer, "_throttle_loop", broken)
    worker = Worker(app, pool="threads", concurrency=1, shutdown_timeout=1,
                    nodename=f"w-{uuid.uuid4().hex[:6]}")
    code: list[int] = []
    runner = threading.Thread(target=lambda: code.append(worker.run()))
    runner.start()
    runner.join(30)
    assert code == [1], "a worker whose thread keeps failing exits non-zero"
    assert len(failures) == supervision.MAX_FAILURES + 1, \
        "restarted after each failure until it had failed too often"


def test_the_heartbeat_file_is_touched_while_the_worker_is_alive_and_not_when_stuck(
        app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from kernel.worker import consumer as consumer_module
    from kernel.worker import liveness

    monkeypatch.setattr(liveness, "PERIOD", 0.1)
    monkeypatch.setattr(consumer_module, "STUCK_AFTER", 2.0)
    beat = tmp_path / "alive"
    release = threading.Event()
    with running_worker(app, concurrency=1, heartbeat_file=str(beat)) as worker:
        first = wait_for(lambda: beat.exists() and beat.stat().st_mtime_ns, 10, "the file")
        consumer = worker.consumer
        assert consumer is not None
        wait_for(lambda: beat.stat().st_mtime_ns > first, 10, "a second touch")
        [step] = [s for s in worker.blueprint.started if s.name == "liveness"]

        def hang(*args: object) -> list[object]:
            release.wait(30)  # a broker connection that never answers
            return []

        monkeypatch.setattr(consumer.transport, "fetch", hang)
        wait_for(lambda: not consumer.alive(), 10, "the fetcher to count as stuck")
        # A look begun before that may still touch: let one begin after it.
        begun = step.checks
        wait_for(lambda: step.checks >= begun + 2, 10, "a look at the stuck worker")
        stale, seen = beat.stat().st_mtime_ns, step.checks
        wait_for(lambda: step.checks >= seen + 3, 10, "three more looks")
        assert beat.stat().st_mtime_ns == stale, "a stuck worker's file is not touched"
        release.set()
