"""Routing shared with a real Celery 5 client on Redis: the same ``task_routes`` (a glob and a
router function) put Celery's tasks and kernel's in the same Redis lists, a kernel worker
without -Q consumes every queue of ``task_queues``, and a Celery client routing by a direct
exchange and routing key reaches the queue a kernel worker bound (kombu's binding set)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import redis

from kernel import App
from kernel.testing.transport import wait_for
from kernel.testing.workers import running_worker
from celery_or_skip import celery


def routes(prefix: str) -> list[Any]:
    def by_argument(name: str, args: Sequence[Any], kwargs: Mapping[str, Any],
                    options: Mapping[str, Any], task: Any = None, **kw: Any) -> Any:
        return f"{prefix}-urgent" if kwargs.get("urgent") else None

    return [by_argument, {f"{prefix}.reports.*": {"queue": f"{prefix}-reports"}}]


def test_celery_and_kernel_clients_route_into_the_same_lists(redis_url: str,
                                                             raw_redis: redis.Redis) -> None:
    prefix = f"rt{uuid.uuid4().hex[:8]}"
    queues = [f"{prefix}-reports", f"{prefix}-urgent", f"{prefix}-default"]
    conf = {"task_routes": routes(prefix), "task_default_queue": queues[2],
            "task_queues": [{"name": name} for name in queues]}
    client = celery.Celery("routing-client", broker=redis_url)
    client.conf.update(task_routes=conf["task_routes"], task_default_queue=queues[2])
    app = App("routing", broker=redis_url, results=redis_url, config=conf)
    ran: list[tuple[str, str]] = []
    lock = threading.Lock()

    def recorder(name: str) -> Callable[..., None]:
        def run(origin: str, urgent: bool = False) -> None:
            with lock:
                ran.append((name, origin))
        return run

    names = [f"{prefix}.reports.daily", f"{prefix}.mail.send"]
    for name in names:
        app.task(recorder(name), name=name, ignore_result=True)
    try:
        for origin, send in (("celery", client.send_task), ("kernel", app.send_task)):
            send(names[0], args=(origin,))
            send(names[1], args=(origin,), kwargs={"urgent": True})
            send(names[1], args=(origin,))
        assert [app.transport.size(q) for q in queues] == [2, 2, 2], \
            "the glob, the router function and the default queue, for both clients"
        with running_worker(app, concurrency=2):
            wait_for(lambda: len(ran) == 6, 20, "the kernel worker ran the six tasks")
        assert sorted(ran) == sorted([(n, o) for o in ("celery", "kernel")
                                      for n in (names[0], names[1], names[1])])
    finally:
        client.close()
        app.close()
        raw_redis.delete(*queues)


def test_a_celery_clients_exchange_route_reaches_a_kernel_workers_binding(
        redis_url: str, raw_redis: redis.Redis) -> None:
    prefix = f"rx{uuid.uuid4().hex[:8]}"
    queue, exchange = f"{prefix}-jobs", f"{prefix}-exchange"
    app = App("routing", broker=redis_url, results=redis_url, config={
        "task_queues": [{"name": queue, "exchange": exchange, "routing_key": "job.run"}]})
    ran: list[int] = []
    app.task(lambda n: ran.append(n), name=f"{prefix}.job", ignore_result=True)
    client = celery.Celery("routing-client", broker=redis_url)
    # Celery publishes to the exchange with the key; kombu finds the queue in Redis.
    client.conf.task_routes = {f"{prefix}.*": {"exchange": exchange, "routing_key": "job.run"}}
    try:
        with running_worker(app, concurrency=1):  # it binds the queue as it starts
            wait_for(lambda: raw_redis.scard(f"_kombu.binding.{exchange}") == 1, 10,
                     "the worker wrote the binding kombu looks up")
            client.send_task(f"{prefix}.job", args=(7,))
            wait_for(lambda: ran == [7], 20, "the kernel worker ran the task Celery routed "
                                             "by exchange")
    finally:
        client.close()
        app.close()
        raw_redis.delete(f"_kombu.binding.{exchange}", queue)
