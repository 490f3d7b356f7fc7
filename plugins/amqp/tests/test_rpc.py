"""The rpc result store on the real RabbitMQ: the conformance suite (in this process, and with
every record travelling from a "worker" store to the client's reply queue), Celery's wire both
ways, and what it refuses."""

from __future__ import annotations

import logging
import select
import socket
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from kernel import App
from kernel.plugin import ConfigurationError, MissingCapability, task_key
from kernel.interfaces.results import ResultStore
from kernel.interfaces.transport import Delivery
from kernel.testing.results import ResultStoreSuite
from kernel.testing.transport import wait_for
from kernel.testing.workers import CeleryWorkerProcess
from kernel.testing.workers import running_worker
from kernel_amqp.rpc import RpcResultStore
from kernel_amqp.transport import AmqpTransport

NewQueue = Callable[[str], str]


@pytest.fixture
def store(url: str) -> Iterator[RpcResultStore]:
    s = RpcResultStore("rpc://", {"broker_url": url})
    yield s
    s.close()


@pytest.fixture
def worker_store(url: str) -> Iterator[RpcResultStore]:
    s = RpcResultStore("rpc://", {"broker_url": url})
    yield s
    s.close()


class RefusesCounters:
    """rpc:// has no counters: the suite's counter and chord tests become tests of the
    refusal."""

    def test_incr(self, store: ResultStore, key: str) -> None:
        with pytest.raises(MissingCapability, match="redis:// or sqlite://"):
            store.incr(key)

    def test_incr_expires(self, store: ResultStore, key: str) -> None:
        with pytest.raises(MissingCapability):
            store.incr(key, 1, expires=0.5)

    def test_incr_under_threads(self, store: ResultStore, key: str) -> None:
        assert not store.capabilities.atomic_counter
        with pytest.raises(MissingCapability):
            store.incr(key, -1)

    def test_chord_part_completes_once_in_index_order(self, store: ResultStore,
                                                      key: str) -> None:
        store.set([(key + ".s", b"1")], None)
        with pytest.raises(MissingCapability):
            store.chord_part(key, 0, "t", b"entry", None)

    def test_chord_part_counts_a_redelivered_member_once(self, store: ResultStore,
                                                         key: str) -> None:
        self.test_chord_part_completes_once_in_index_order(store, key)


class TestRpcStore(RefusesCounters, ResultStoreSuite):
    """Records a process writes for itself (`set`): kept here."""

    @pytest.fixture
    def store(self, url: str) -> Iterator[ResultStore]:
        s = RpcResultStore("rpc://", {"broker_url": url})
        yield s
        s.close()


class OverTheBroker(ResultStore):
    """Every write goes the way a worker's does: `set_reply` from another store, through
    RabbitMQ, to the client's reply queue; reads are the client's."""

    def __init__(self, client: RpcResultStore, worker: RpcResultStore) -> None:
        self.client, self.worker = client, worker
        self.capabilities = client.capabilities
        self.address = client.reply_address()

    def set(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        self.worker.set_reply({"reply_to": self.address}, items, expires)

    def add(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        self.client.add(items, expires)

    def get(self, key: str) -> bytes | None:
        return self.client.get(key)

    def wait(self, key: str, timeout: float | None, unless: bytes | None = None) -> bytes | None:
        return self.client.wait(key, timeout, unless)

    def delete(self, keys: Sequence[str]) -> None:
        self.client.delete(keys)

    def incr(self, key: str, amount: int = 1, expires: float | None = None) -> int:
        return self.client.incr(key, amount, expires)

    def close(self) -> None:
        self.client.close()


class TestRpcStoreOverRabbitMQ(RefusesCounters, ResultStoreSuite):
    @pytest.fixture
    def store(self, url: str, worker_store: RpcResultStore) -> Iterator[ResultStore]:
        s = OverTheBroker(RpcResultStore("rpc://", {"broker_url": url}), worker_store)
        yield s
        s.close()


# ---------------------------------------------------------------------------- the store alone


def test_the_broker_comes_from_the_app_or_the_url(url: str) -> None:
    with pytest.raises(ConfigurationError, match="amqp:// broker_url"):
        App("t", broker="sqlite:///:memory:", results="rpc://").backend.store  # noqa: B018
    named = RpcResultStore("rpc://" + url.partition("://")[2], {})
    try:
        assert named.broker == "amqp://" + url.partition("://")[2]
        assert named.reply_address() == named.queue
    finally:
        named.close()


def test_records_sent_while_the_client_reconnects_wait_for_it(
        store: RpcResultStore, worker_store: RpcResultStore) -> None:
    address = store.reply_address()
    assert store._link is not None
    store._link.raw.sock.shutdown(socket.SHUT_RDWR)  # the client's connection dies
    key = task_key(str(uuid.uuid4()))
    worker_store.set_reply({"reply_to": address}, [(key, b'{"status": "SUCCESS"}')], None)
    assert store.wait(key, 10) == b'{"status": "SUCCESS"}', \
        "the reply queue must outlive the client's connection and deliver once it is back"


def test_a_result_for_a_vanished_client_is_dropped_with_a_warning(
        worker_store: RpcResultStore, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kernel_amqp.rpc"):
        worker_store.set_reply({"reply_to": f"kernel.rpc.gone-{uuid.uuid4().hex}"},
                               [(task_key("t"), b"{}")], None)
        worker_store.set_reply({}, [(task_key("t"), b"{}")], None)
    assert "were not delivered" in caplog.text
    assert "has no reply_to" in caplog.text


def test_a_record_that_arrived_before_the_wait_ends_it_at_once(
        store: RpcResultStore, worker_store: RpcResultStore,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The usual round trip: the worker's reply reaches the client's socket while the client
    still publishes. The wait reads it on reconnecting its consumer and must not then sit out a
    whole slice for more (it did: 50 ms in 8% of round trips)."""
    monkeypatch.setattr("kernel_amqp.rpc.SLICE", 10.0)  # a missed record would show as 10 s
    address = store.reply_address()
    key = task_key(str(uuid.uuid4()))
    worker_store.set_reply({"reply_to": address}, [(key, b"early")], None)
    assert store._link is not None
    sock = store._link.raw.sock
    wait_for(lambda: select.select([sock], [], [], 0)[0], message="the record reaches the "
             "client's socket")
    started = time.monotonic()
    assert store.wait(key, 20) == b"early"
    assert time.monotonic() - started < 5, "the wait sat out a slice with the record in hand"


def test_each_client_sees_only_its_own_results(url: str, store: RpcResultStore,
                                              worker_store: RpcResultStore) -> None:
    other = RpcResultStore("rpc://", {"broker_url": url})
    try:
        key = task_key(str(uuid.uuid4()))
        worker_store.set_reply({"reply_to": store.reply_address()}, [(key, b"mine")], None)
        assert store.get(key) == b"mine"
        assert other.get(key) is None, "a record reached a client that did not send the task"
    finally:
        other.close()


# ---------------------------------------------------------------------------- kernel apps


def add(x: int, y: int) -> int:
    return x + y


@pytest.fixture
def rpc_app(url: str, new_queue: NewQueue) -> Iterator[App]:
    app = App("rpc", broker=url, results="rpc://",
              config={"task_default_queue": new_queue("rpc")})
    yield app
    app.close()


def test_tasks_carry_the_reply_queue_of_their_client(rpc_app: App, url: str) -> None:
    add_task = rpc_app.task(name="rpc.add")(add)
    add_task.delay(1, 2)
    rpc_app.send_task("rpc.add", (1, 2), ignore_result=True)
    reader = AmqpTransport(url, {})
    try:
        got: list[Delivery] = []
        wait_for(lambda: got.extend(reader.fetch([rpc_app.conf.task_default_queue], 2, 0.2))
                 or len(got) == 2, 5, "both tasks")
        replies = [d.envelope.properties.get("reply_to") for d in got]
        assert replies == [rpc_app.backend.store.queue, None], \
            "a task whose result is wanted names the client's reply queue; an ignored one not"
        reader.ack(got)
    finally:
        reader.close()


def test_kernel_client_gets_results_from_a_kernel_worker(rpc_app: App) -> None:
    app = rpc_app
    attempts: list[int] = []

    @app.task(name="rpc.add")
    def add_task(x: int, y: int) -> int:
        return x + y

    @app.task(name="rpc.flaky", bind=True, default_retry_delay=0)
    def flaky(self: Any) -> str:
        attempts.append(1)
        if len(attempts) < 2:
            raise self.retry()
        return "second time lucky"

    @app.task(name="rpc.fail")
    def fail() -> None:
        raise ValueError("boom")

    with running_worker(app, concurrency=2, queues=[app.conf.task_default_queue]):
        assert add_task.delay(2, 3).get(timeout=15) == 5
        assert flaky.delay().get(timeout=15) == "second time lucky", \
            "a retry must keep the caller's reply_to"
        chain = add_task.s(1, 1) | add_task.s(10)
        assert chain.apply_async().get(timeout=15) == 12, \
            "the last step of a chain must answer the client that sent the chain"
        with pytest.raises(ValueError, match="boom"):
            fail.delay().get(timeout=15)


# ---------------------------------------------------------------------------- Celery


def test_celery_client_gets_a_kernel_workers_result_over_rpc(rpc_app: App, celery: Any) -> None:
    app = rpc_app
    queue = app.conf.task_default_queue

    @app.task(name="interop.add")
    def add_task(x: int, y: int) -> int:
        return x + y

    @app.task(name="interop.fail")
    def fail() -> None:
        raise KeyError("missing")

    client = celery.Celery("client", broker=app.conf.broker_url, backend="rpc://")
    client.conf.task_queue_max_priority = 10
    try:
        with running_worker(app, concurrency=2, queues=[queue]):
            result = client.send_task("interop.add", args=(2, 3), queue=queue)
            assert result.get(timeout=15) == 5
            assert result.state == "SUCCESS"
            failed = client.send_task("interop.fail", queue=queue)
            with pytest.raises(Exception, match="missing") as raised:
                failed.get(timeout=15)
            assert type(raised.value).__name__ == "KeyError"
            assert failed.state == "FAILURE"
    finally:
        client.close()


CELERY_TASKS = textwrap.dedent("""
    from celery import Celery

    app = Celery("celeryrpc", broker={url!r}, backend="rpc://")
    app.conf.task_queue_max_priority = 10

    @app.task(name="interop.mul")
    def mul(x, y):
        return x * y
""")


def test_kernel_client_gets_a_celery_workers_result_over_rpc(
        rpc_app: App, url: str,
        celery_worker: Callable[[str, str, str], CeleryWorkerProcess]) -> None:
    queue = rpc_app.conf.task_default_queue
    celery_worker("celeryrpc", CELERY_TASKS.format(url=url), queue)
    assert rpc_app.send_task("interop.mul", (6, 7), queue=queue).get(timeout=60) == 42
