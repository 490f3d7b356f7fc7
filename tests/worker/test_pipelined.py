"""``app.pipelined()``: sends in the block return before the broker answers, everything sent is
published in call order by the time the block ends, and a failure names every task that was
not published. On memory, SQLite and Redis (and a Redis that is not there)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from kernel import App, hookimpl
from kernel import PublishError
from kernel.errors import ConnectionFailed
from kernel.interfaces.transport import Outgoing, Transport
from kernel.worker import Worker
from tests.worker.conftest import make_app


@pytest.fixture
def app(broker_url: str) -> Iterator[App]:
    app = make_app("pipelined", broker_url)

    @app.task(name="echo")
    def echo(n: int) -> int:
        return n

    @app.task(name="once", unique=True)
    def once(key: str) -> str:
        return key

    yield app
    app.close()


def queued_ids(app: App) -> list[str]:
    """The task ids waiting in the app's queue, in the order a consumer gets them."""
    transport, queue = app.transport, app.conf.task_default_queue
    ids: list[str] = []
    while batch := transport.fetch([queue], 500, 0.2):
        ids += [d.envelope.headers["id"] for d in batch]
        transport.ack(batch)
    return ids


class Gate:
    """Holds the real transport's publish until opened, counting what went through."""

    def __init__(self, transport: Transport) -> None:
        self.real = transport.publish
        self.open = threading.Event()
        self.entered = threading.Event()
        self.published: list[str] = []
        transport.publish = self  # type: ignore[method-assign]

    def __call__(self, messages: list[Outgoing]) -> None:
        self.entered.set()
        assert self.open.wait(10), "the test never opened the gate"
        self.real(messages)
        self.published += [m.envelope.headers["id"] for m in messages]


def test_everything_sent_is_published_in_call_order(app: App) -> None:
    with app.pipelined():
        sent = [app.tasks["echo"].delay(i).id for i in range(300)]
        more = app.send_many([(app.tasks["echo"], (i,), {}) for i in range(50)])
    assert queued_ids(app) == sent + [r.id for r in more]


def test_delay_returns_before_the_broker_answers_and_the_block_waits(app: App) -> None:
    gate = Gate(app.transport)
    ended = threading.Event()
    sent: list[str] = []

    def block() -> None:
        with app.pipelined():
            sent.extend(app.tasks["echo"].delay(i).id for i in range(5))
            assert gate.entered.wait(10)
            assert gate.published == []  # all five calls returned; the broker has none yet
        ended.set()

    thread = threading.Thread(target=block)
    thread.start()
    assert gate.entered.wait(10)
    assert not ended.wait(0.2), "the block ended before its tasks were published"
    gate.open.set()
    thread.join(10)
    assert ended.is_set()
    assert gate.published == sent


def test_results_of_pipelined_tasks_come_back(app: App) -> None:
    worker = Worker(app, pool="threads", concurrency=2, shutdown_timeout=5)
    worker.start()
    try:
        with app.pipelined():
            results = [app.tasks["echo"].delay(i) for i in range(20)]
            # a wait inside the block sees its task: the sender does not wait for the block
            assert results[0].get(timeout=10) == 0
        assert [r.get(timeout=10) for r in results] == list(range(20))
    finally:
        worker.stop()


def test_pending_is_recorded_for_tracked_tasks(app: App) -> None:
    with app.pipelined():
        result = app.tasks["echo"].delay(1)
    assert result.state == "PENDING"  # sent, not yet run: PENDING, not UNKNOWN


def test_a_unique_task_publishes_after_what_was_sent_before_it(app: App) -> None:
    with app.pipelined():
        first = [app.tasks["echo"].delay(i).id for i in range(20)]
        key = uuid.uuid4().hex  # claims live in the result store: one of this test's own
        unique = app.tasks["once"].delay(key).id
        duplicate = app.tasks["once"].delay(key).id  # claimed already: no second message
        last = app.tasks["echo"].delay(99).id
    assert duplicate == unique
    assert queued_ids(app) == [*first, unique, last]


def test_an_error_in_the_block_still_publishes_what_was_sent(app: App) -> None:
    with pytest.raises(ZeroDivisionError), app.pipelined():
        sent = [app.tasks["echo"].delay(i).id for i in range(10)]
        1 / 0  # noqa: B018 - the block's own error
    assert queued_ids(app) == sent


def test_a_failed_batch_names_every_unpublished_task_and_stops_sending(app: App) -> None:
    # The real transport, made to fail on its second call (a broker that goes away mid-block).
    calls: list[int] = []
    real = app.transport.publish

    def flaky(messages: list[Outgoing]) -> None:
        calls.append(len(messages))
        if len(calls) == 2:
            raise ConnectionFailed("the broker went away")
        real(messages)

    app.transport.publish = flaky  # type: ignore[method-assign]
    sent: list[str] = []
    with pytest.raises(PublishError) as caught:
        with app.pipelined():
            for i in range(3000):
                sent.append(app.tasks["echo"].delay(i).id)
    published = queued_ids(app)
    assert published == sent[:len(published)]  # a prefix, in order: nothing after the failure
    unsent = sent[len(published):]
    # ... plus, if a send in the loop met the failure and raised, that call's task, last
    assert caught.value.task_ids[:len(unsent)] == unsent
    assert len(caught.value.task_ids) - len(unsent) in (0, 1)
    assert "the broker went away" in str(caught.value)
    assert "not published" in str(caught.value)


def test_sends_after_a_failure_raise_at_once() -> None:
    # A Redis that is not there (nothing listens on port 1): the first batch fails for real.
    pytest.importorskip("kernel_redis")
    app = App("gone", broker="redis://127.0.0.1:1/0", results=None)

    @app.task(name="echo")
    def echo(n: int) -> int:
        return n

    sent: list[str] = []
    with pytest.raises(PublishError) as caught, app.pipelined():
        sent.append(echo.delay(0).id)
        with pytest.raises(PublishError):
            while True:  # until the sender has met the failure; then every send raises
                sent.append(echo.delay(len(sent)).id)
    # ... and the error names them all, the call that raised last.
    assert caught.value.task_ids[:-1] == sent and len(caught.value.task_ids) == len(sent) + 1
    assert "cannot reach Redis" in str(caught.value)


class Signals:
    """The publish signals and the thread each came from."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    @hookimpl
    def kernel_before_publish(self, envelope: Any) -> None:
        self.seen.append(("before", envelope.headers["id"], threading.current_thread().name))

    @hookimpl
    def kernel_after_publish(self, envelope: Any) -> None:
        self.seen.append(("after", envelope.headers["id"], threading.current_thread().name))


def test_before_publish_runs_in_the_caller_and_after_publish_once_published(
        broker_url: str) -> None:
    signals = Signals()
    app = App("signals", broker=broker_url, results=broker_url, plugins=[signals],
              config={"task_default_queue": "pipelined-signals"})
    echo = app.task(name="echo")(lambda n: n)
    try:
        with app.pipelined():
            ids = [echo.delay(i).id for i in range(3)]
        me = threading.current_thread().name
        assert [(kind, i) for kind, i, _ in signals.seen if kind == "before"] == [
            ("before", i) for i in ids]
        assert {t for kind, _, t in signals.seen if kind == "before"} == {me}
        assert [i for kind, i, _ in signals.seen if kind == "after"] == ids
        assert {t for kind, _, t in signals.seen if kind == "after"} == {"kernel-publisher"}
    finally:
        app.transport.purge("pipelined-signals")
        app.close()


def test_a_coroutine_that_outlives_its_block_publishes_by_itself(app: App) -> None:
    import asyncio

    async def main() -> tuple[str, str]:
        release = asyncio.Event()

        async def late() -> str:
            await release.wait()
            return app.tasks["echo"].delay(2).id  # the block it was started in has ended

        with app.pipelined():
            first = app.tasks["echo"].delay(1).id
            straggler = asyncio.ensure_future(late())  # copies the context: sees the block
        release.set()
        return first, await straggler

    first, second = asyncio.run(main())
    assert queued_ids(app) == [first, second]
