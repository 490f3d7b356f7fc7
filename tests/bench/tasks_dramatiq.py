"""Dramatiq's benchmark tasks (the same bodies as kernel's), on the broker under test
(BENCH_BROKER). Results are on Redis either way: Dramatiq has no result store on RabbitMQ, so
the round trip is measured on Redis only."""

from __future__ import annotations

import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends.redis import RedisBackend

from tests.bench import env

QUEUE = "bench_dramatiq"

broker: dramatiq.Broker
if env.on_rabbitmq():
    from dramatiq.brokers.rabbitmq import RabbitmqBroker  # needs pika: only here

    broker = RabbitmqBroker(url=env.amqp_url())
else:
    broker = RedisBroker(url=env.redis_url())
broker.add_middleware(Results(backend=RedisBackend(url=env.redis_url())))
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, actor_name="bench_noop", max_retries=0)
def noop() -> None:
    env.incr()


@dramatiq.actor(queue_name=QUEUE, actor_name="bench_ping", max_retries=0, store_results=True)
def ping() -> int:
    env.incr()
    return 1


@dramatiq.actor(queue_name=QUEUE, actor_name="bench_sleepy", max_retries=0)
def sleepy() -> None:
    time.sleep(0.05)
    env.incr()
