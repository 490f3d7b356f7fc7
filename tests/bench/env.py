"""What the driver tells the task modules (through the environment, so worker subprocesses
read the same values): the broker under test, its URLs, and where the counter lives."""

from __future__ import annotations

import os

REDIS_URL = "BENCH_REDIS_URL"
AMQP_URL = "BENCH_AMQP_URL"
#: the moto server of an SQS run (the bench starts it: ``sqs://KEY:SECRET@127.0.0.1:PORT``).
SQS_URL = "BENCH_SQS_URL"
#: the broker the peers' task modules connect to: "redis", "rabbitmq" or "sqs".
BROKER = "BENCH_BROKER"
KERNEL_URL = "BENCH_KERNEL_URL"
KERNEL_RESULTS = "BENCH_KERNEL_RESULTS"
#: "redis" (one INCR on BENCH_REDIS_URL) or "results" (the kernel app's result store; SQLite).
COUNTER = "BENCH_COUNTER"
#: the list the green rows' tasks wait on (BLPOP): nothing is ever pushed to it.
NEVER_PUSHED = "bench.never"

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"  # vhost "/", as pika and kombu read it
#: the counter every task body increments once; the driver polls it to count completions.
COUNTER_KEY = "bench.done"


def redis_url() -> str:
    return os.environ.get(REDIS_URL, DEFAULT_REDIS_URL)


def amqp_url() -> str:
    return os.environ.get(AMQP_URL, DEFAULT_AMQP_URL)


def on_rabbitmq() -> bool:
    return os.environ.get(BROKER, "redis") == "rabbitmq"


def on_sqs() -> bool:
    return os.environ.get(BROKER, "redis") == "sqs"


def broker_url() -> str:
    if on_sqs():
        return os.environ[SQS_URL]
    return amqp_url() if on_rabbitmq() else redis_url()


def results_url() -> str:
    """Results on the broker's own server: Redis, or RabbitMQ's reply queues (``rpc://``);
    on SQS, which keeps no results, Redis."""
    return "rpc://" if on_rabbitmq() else redis_url()


def redis_client() -> object:
    """A redis-py client on the benchmark database (imported late: the SQLite-only run and the
    smoke test need no redis package)."""
    import redis

    # A connection for each of 500 greenlets (the green rows): redis-py keeps 100 by default.
    return redis.Redis.from_url(redis_url(), max_connections=10_000)


_client: object | None = None
_client_pid: int | None = None


def incr() -> None:
    """The task body every system runs, on every broker: one INCR of `COUNTER_KEY` in Redis.
    One client per process, made after any fork (a connection must not cross a fork)."""
    global _client, _client_pid
    if _client_pid != os.getpid():
        _client, _client_pid = redis_client(), os.getpid()
    _client.incr(COUNTER_KEY)  # type: ignore[attr-defined]


def wait_on_socket() -> None:
    """The green rows' task body: 50 ms waiting on a socket, not a sleep (a BLPOP of a list
    nothing is pushed to, which Redis answers after its 0.05 s timeout), then the INCR."""
    incr()  # makes the client
    _client.blpop([NEVER_PUSHED], timeout=0.05)  # type: ignore[attr-defined]
