"""Celery's benchmark tasks (the same bodies as kernel's), on the broker under test (BENCH_BROKER)
with results on the same server (Redis, or rpc:// on RabbitMQ)."""

from __future__ import annotations

import time

from celery import Celery

from tests.bench import env

QUEUE = "bench_celery"

app = Celery("bench", broker=env.broker_url(), backend=env.results_url())
app.conf.update(task_default_queue=QUEUE, broker_connection_retry_on_startup=True,
                worker_hijack_root_logger=False)
if env.on_sqs():
    # kombu's long polls (its 10 s default, as kernel's), without its 1 s pause after an empty
    # one, which only slows Celery's round trip.
    app.conf.broker_transport_options = {"region": "us-east-1", "polling_interval": 0}


@app.task(name="bench.noop", ignore_result=True)
def noop() -> None:
    env.incr()


@app.task(name="bench.ping")
def ping() -> int:
    env.incr()
    return 1


@app.task(name="bench.sleepy", ignore_result=True)
def sleepy() -> None:
    time.sleep(0.05)
    env.incr()


@app.task(name="bench.socket_wait", ignore_result=True)
def socket_wait() -> None:
    env.wait_on_socket()
