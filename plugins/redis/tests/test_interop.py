"""Celery 5 and kernel on one Redis: a Celery client calls a kernel worker, and a kernel client
calls a Celery worker, each reading the result through its own AsyncResult."""

from __future__ import annotations

import time
import textwrap
import uuid
from collections.abc import Callable

import pytest

from kernel import App
from kernel.testing.workers import CeleryWorkerProcess
from kernel.testing.workers import running_worker

from celery_or_skip import celery



@pytest.fixture
def queue() -> str:
    return f"interop-{uuid.uuid4().hex}"


def test_celery_client_calls_kernel_worker(redis_url: str, queue: str) -> None:
    kapp = App("kernel-side", broker=redis_url, results=redis_url,
               config={"task_default_queue": queue})

    @kapp.task(name="interop.add")
    def add(x: int, y: int) -> int:
        return x + y

    capp = celery.Celery("celery-side", broker=redis_url, backend=redis_url)
    capp.conf.task_default_queue = queue

    @capp.task(name="interop.add")  # type: ignore[untyped-decorator]
    def celery_add(x: int, y: int) -> int:
        raise AssertionError("runs on the kernel worker, never here")

    try:
        with running_worker(kapp, concurrency=2):
            result = celery_add.delay(2, 3)
            assert result.get(timeout=15) == 5, \
                "a Celery client must read the kernel worker's result"
            assert result.status == "SUCCESS"
    finally:
        kapp.close()
        capp.close()


CELERY_TASKS = textwrap.dedent("""
    from celery import Celery
    app = Celery("ctasks", broker={url!r}, backend={url!r})
    app.conf.task_default_queue = {queue!r}
    app.conf.worker_hijack_root_logger = False

    @app.task(name="interop.mul")
    def mul(x, y):
        return x * y
""")


@pytest.mark.timeout(90)
def test_kernel_client_calls_celery_worker(
        redis_url: str, queue: str,
        celery_worker: Callable[[str, str, str], CeleryWorkerProcess]) -> None:
    worker = celery_worker("ctasks", CELERY_TASKS.format(url=redis_url, queue=queue), queue)
    kapp = App("kernel-client", broker=redis_url, results=redis_url)
    try:
        result = kapp.send_task("interop.mul", (6, 7), queue=queue)
        assert result.get(timeout=40) == 42, \
            f"a kernel client must read the Celery worker's result; see {worker.log}"
    finally:
        kapp.close()


def test_broadcasts_travel_on_kombus_fanout_channels(redis_url: str) -> None:
    """Events and control messages: what kombu (Celery, Flower) publishes on a fanout exchange
    reaches a kernel subscriber, and what kernel broadcasts reaches a kombu consumer."""
    import json

    from kombu import Connection, Consumer, Exchange, Producer, Queue

    from kernel.testing.broadcast import collect
    from kernel.testing.transport import make_envelope

    exchange = Exchange(f"ev-{uuid.uuid4().hex[:10]}", type="fanout")
    kernel_app = App("fanout", broker=redis_url, results=None)
    sub = kernel_app.transport.subscribe(exchange.name, "worker.#")
    received: list[tuple[str, dict[str, object]]] = []
    try:
        with Connection(redis_url) as conn:
            Producer(conn.channel(), exchange=exchange).publish(
                {"type": "worker-heartbeat", "hostname": "celery@h"},
                routing_key="worker.heartbeat", serializer="json")
            got = collect(sub, 1)
            assert [key for key, _ in got] == ["worker.heartbeat"]
            assert json.loads(got[0][1].body)["hostname"] == "celery@h"

            queue = Queue(f"{exchange.name}-q", exchange, routing_key="worker.#",
                          auto_delete=True)
            with Consumer(conn.channel(), [queue], accept=["json"], callbacks=[
                    lambda body, message: received.append(
                        (message.delivery_info["routing_key"], body))]):
                # kombu subscribes lazily, inside drain_events, and pub/sub keeps nothing for
                # late subscribers: broadcast until the consumer is listening.
                deadline = time.monotonic() + 5
                while not received and time.monotonic() < deadline:
                    kernel_app.transport.broadcast(exchange.name, "worker.online",
                                                   make_envelope(7))
                    try:
                        conn.drain_events(timeout=0.2)
                    except TimeoutError:
                        pass
    finally:
        sub.close()
        kernel_app.close()
    assert received and received[0][0] == "worker.online", received
