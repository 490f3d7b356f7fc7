"""One adapter per system: how to send its tasks, start its worker in each mode, make one round
trip, and where its messages are on each broker (for the broker's fast fill, `brokers`). Task
modules are imported when a system is first used, so a run with ``--only kernel-sqlite`` needs
neither the peers nor a server."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from importlib import import_module
from typing import Any

from tests.bench import env
from tests.bench.brokers import CHUNK, Broker, Redis, replace_all
from tests.bench.procs import WorkerProc


class System(ABC):
    name: str
    #: what each worker mode runs, shown under the table: {mode: description}.
    configs: dict[str, str]
    #: brokers it runs on.
    brokers: tuple[str, ...] = ("redis", "rabbitmq")
    #: the queues its messages wait in on a broker, the first the one its tasks go to.
    queues: tuple[str, ...]
    has_batch = False
    #: worker modes tried for the I/O-bound row; the best is recorded.
    io_modes: tuple[str, ...] = ("io",)
    #: the drain rows it runs (kernel adds "events": task events on).
    modes: tuple[str, ...] = ("one", "two")
    #: measured in the first run only: absolute figures with no peer on its broker to alternate
    #: with, so the median of several runs adds time and no fairness.
    first_run_only = False
    #: the green pools it runs the green rows with (those installed).
    green_pools: tuple[str, ...] = ()

    def __init__(self, broker: Broker, io_concurrency: int) -> None:
        self.broker = broker
        self.io_concurrency = io_concurrency

    def reset(self) -> None:
        """Empty its queues and the counter (the next run starts from nothing)."""
        self.broker.reset(self)

    def count(self) -> int:
        """Tasks done so far (the counter every task body increments)."""
        return self.broker.count()

    @abstractmethod
    def enqueue(self, n: int, task: str = "noop") -> None:
        """Publish `n` tasks one call at a time, the way a user would."""

    def enqueue_batch(self, n: int, task: str = "noop") -> None:
        raise NotImplementedError

    def enqueue_pipelined(self, n: int, task: str = "noop") -> None:
        raise NotImplementedError

    def enqueue_unconfirmed(self, n: int) -> bool:
        """`enqueue` without waiting for the broker's confirms, where that is an option (kernel
        on RabbitMQ: ``confirm_publish=False``); False where it is not."""
        return False

    def prequeue(self, n: int, task: str) -> None:
        """Fill the queue with `n` tasks as fast as possible (untimed set-up for a drain)."""
        self.broker.prequeue(self, n, task)

    def redis_prequeue(self, n: int, task: str) -> None:
        """`prequeue` on Redis, where each system keeps its messages its own way."""
        raise NotImplementedError

    def _redis(self) -> Redis:
        assert isinstance(self.broker, Redis)
        return self.broker

    def message_ids(self, message: Any) -> list[str]:
        """The ids in an AMQP `message` that must differ between copies (RabbitMQ's fill)."""
        return [message.properties["application_headers"]["id"]]

    def round_trips(self) -> bool:
        """Whether it has a result store on the broker's server (the round trip row)."""
        return True

    @abstractmethod
    def worker_argv(self, mode: str) -> list[str]: ...

    def worker_env(self) -> dict[str, str]:
        return self.broker.env()

    def start_worker(self, mode: str) -> WorkerProc:
        return WorkerProc(self.worker_argv(mode), self.worker_env())

    def green_argv(self, pool: str, slots: int) -> list[str]:
        """Its worker on green pool `pool` with `slots` green threads."""
        raise NotImplementedError

    @abstractmethod
    def call(self, timeout: float) -> Any:
        """One submit-and-wait of the ping task; returns its result."""

    def other_calls(self) -> dict[str, Callable[[float], Any]]:
        """Round trips measured besides `call`, on the same worker: {row prefix: call}."""
        return {}

    def close(self) -> None:
        """Release the driver's connections and files."""


class Kernel(System):
    name = "kernel"
    brokers = ("redis", "rabbitmq", "sqs")
    has_batch = True
    modes = ("one", "events", "two")

    def __init__(self, broker: Broker, io_concurrency: int, url: str | None = None,
                 results: str | None = None) -> None:
        super().__init__(broker, io_concurrency)
        self.url = url or env.broker_url()
        self.results = results or (None if url else env.results_url())
        self.configs = {"one": "-P solo", "two": "-P prefork -c 2",
                        "io": f"-P asyncio -c {io_concurrency}"}
        self.tasks = import_module("tests.bench.tasks_kernel")
        self.queues = (self.tasks.QUEUE,)
        if broker.name == "sqs":
            self.modes = ("one", "two")  # no broadcast there: -E sends no events
        self.counter = "redis"
        self.app = self.tasks.make_app(self.url, self.results, self.counter)
        self.untracked: Any = None
        self.green_pools = installed(("gevent", "kernel_gevent"), ("eventlet", "kernel_eventlet"))

    def _task(self, task: str) -> Any:
        return self.app.tasks[f"bench.{task}"]

    def enqueue(self, n: int, task: str = "noop") -> None:
        delay = self._task(task).delay
        for _ in range(n):
            delay()

    def enqueue_pipelined(self, n: int, task: str = "noop") -> None:
        with self.app.pipelined():
            self.enqueue(n, task)

    def enqueue_unconfirmed(self, n: int) -> bool:
        if self.broker.name != "rabbitmq":
            return False
        app = self.tasks.make_app(self.url, self.results, self.counter,
                                  transport_options={"confirm_publish": False})
        try:
            delay = app.tasks["bench.noop"].delay
            for _ in range(n):
                delay()
        finally:
            app.close()
        return True

    def enqueue_batch(self, n: int, task: str = "noop") -> None:
        target = self._task(task)
        for start in range(0, n, CHUNK):
            self.app.send_many([(target, (), {})] * min(CHUNK, n - start))

    def prequeue(self, n: int, task: str) -> None:
        self.enqueue_batch(n, task)

    def start_worker(self, mode: str, queues: list[str] | None = None) -> WorkerProc:
        """Its worker in `mode`, consuming `queues` (default: its own one)."""
        return WorkerProc(self.worker_argv(mode, queues), self.worker_env())

    def worker_argv(self, mode: str, queues: list[str] | None = None) -> list[str]:
        pool = {"one": ["-P", "solo", "-c", "1"], "two": ["-P", "prefork", "-c", "2"],
                "events": ["-P", "solo", "-c", "1", "-E"],
                "io": ["-P", "asyncio", "-c", str(self.io_concurrency)]}[mode]
        return ["kernel", "worker", "-A", "tests.bench.tasks_kernel:app", *pool,
                "-Q", ",".join(queues or [self.tasks.QUEUE]), "--loglevel", "WARNING"]

    def green_argv(self, pool: str, slots: int) -> list[str]:
        return ["kernel", "worker", "-A", "tests.bench.tasks_kernel:app", "-P", pool,
                "-c", str(slots), "-Q", self.tasks.QUEUE, "--loglevel", "WARNING"]

    def worker_env(self) -> dict[str, str]:
        return {**super().worker_env(), env.KERNEL_URL: self.url,
                env.KERNEL_RESULTS: self.results or self.url, env.COUNTER: self.counter}

    def call(self, timeout: float) -> Any:
        return self._task("ping").delay().get(timeout=timeout)

    def other_calls(self) -> dict[str, Callable[[float], Any]]:
        """The round trip without the PENDING record a send writes first (task_track_sent:
        what it buys is PENDING, not UNKNOWN, for a task sent but not yet started)."""
        if self.untracked is None:
            self.untracked = self.tasks.make_app(self.url, self.results, self.counter,
                                                 task_track_sent=False)
        ping = self.untracked.tasks["bench.ping"]
        return {"rtt.untracked": lambda timeout: ping.delay().get(timeout=timeout)}

    def close(self) -> None:
        self.app.close()
        if self.untracked is not None:
            self.untracked.close()


class KernelSqlite(Kernel):
    """The embedded default: broker, results and counter in one SQLite file (a new one per run).
    It needs no server; its column sits in the Redis table."""

    name = "kernel-sqlite"
    brokers = ("redis",)
    first_run_only = True

    def __init__(self, broker: Broker, io_concurrency: int) -> None:
        self.dir = tempfile.mkdtemp(prefix="kernel-bench-")
        self.runs = 0
        super().__init__(broker, io_concurrency, self._next_url())
        self.counter = "results"
        self.reset()

    def _next_url(self) -> str:
        self.runs += 1
        return f"sqlite:///{self.dir}/run{self.runs}.db"

    def reset(self) -> None:
        self.app.close()
        if self.untracked is not None:  # on the last run's file
            self.untracked.close()
            self.untracked = None
        self.url = self._next_url()
        self.app = self.tasks.make_app(self.url, None, self.counter)

    def count(self) -> int:
        value = self.app.backend.store.get(env.COUNTER_KEY)
        return int(value or 0)

    def worker_env(self) -> dict[str, str]:
        return {env.KERNEL_URL: self.url, env.KERNEL_RESULTS: self.url,
                env.COUNTER: self.counter}

    def close(self) -> None:
        super().close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Celery(System):
    name = "celery"
    brokers = ("redis", "rabbitmq", "sqs")

    def __init__(self, broker: Broker, io_concurrency: int) -> None:
        super().__init__(broker, io_concurrency)
        self.tasks = import_module("tests.bench.tasks_celery")
        self.queues = (self.tasks.QUEUE,)
        # Celery's best I/O pool: threads, and gevent when installed (the better one counts).
        self.io_modes = ("io",)
        try:
            import_module("gevent")
            self.io_modes = ("io", "io-gevent")
        except ImportError:
            pass
        pools = " or ".join(f"-P {p}" for p in ("threads", "gevent")[:len(self.io_modes)])
        self.configs = {"one": "-P solo", "two": "-P prefork -c 2",
                        "io": f"{pools} -c {io_concurrency} (best)"}
        self.green_pools = installed(("gevent",), ("eventlet",))

    def enqueue(self, n: int, task: str = "noop") -> None:
        delay = getattr(self.tasks, task).delay
        for _ in range(n):
            delay()

    def redis_prequeue(self, n: int, task: str) -> None:
        queue, redis = self.tasks.QUEUE, self._redis()
        getattr(self.tasks, task).delay()
        raw = redis.redis.lpop(queue)
        message = json.loads(raw)
        ids = [message["headers"]["id"].encode(), message["properties"]["delivery_tag"].encode()]
        redis.copy_messages(n, lambda pipe, new: pipe.lpush(queue, replace_all(raw, ids, new)),
                            ids)

    def worker_argv(self, mode: str) -> list[str]:
        pool = {"one": ["-P", "solo", "-c", "1"], "two": ["-P", "prefork", "-c", "2"],
                "io": ["-P", "threads", "-c", str(self.io_concurrency)],
                "io-gevent": ["-P", "gevent", "-c", str(self.io_concurrency)]}[mode]
        return ["celery", "-A", "tests.bench.tasks_celery", "worker", *pool, "--without-gossip",
                "--without-mingle", "--without-heartbeat", "-Q", self.tasks.QUEUE,
                "--loglevel", "WARNING"]

    def green_argv(self, pool: str, slots: int) -> list[str]:
        return ["celery", "-A", "tests.bench.tasks_celery", "worker", "-P", pool, "-c",
                str(slots), "--without-gossip", "--without-mingle", "--without-heartbeat",
                "-Q", self.tasks.QUEUE, "--loglevel", "WARNING"]

    def call(self, timeout: float) -> Any:
        return self.tasks.ping.delay().get(timeout=timeout)


class Dramatiq(System):
    name = "dramatiq"

    def __init__(self, broker: Broker, io_concurrency: int) -> None:
        super().__init__(broker, io_concurrency)
        self.tasks = import_module("tests.bench.tasks_dramatiq")
        queue = self.tasks.QUEUE  # and its delay and dead-letter queues on RabbitMQ
        self.queues = (queue, f"{queue}.DQ", f"{queue}.XQ")
        self.configs = {"one": "-p 1 -t 8 (1 process, default threads)", "two": "-p 2 -t 8",
                        "io": f"-p 1 -t {io_concurrency}"}

    def enqueue(self, n: int, task: str = "noop") -> None:
        send = getattr(self.tasks, task).send
        for _ in range(n):
            send()

    def message_ids(self, message: Any) -> list[str]:
        return [json.loads(message.body)["message_id"]]

    def round_trips(self) -> bool:
        return self.broker.name == "redis"  # its result stores: Redis and memcached only

    def redis_prequeue(self, n: int, task: str) -> None:
        queue, redis = f"dramatiq:{self.tasks.QUEUE}", self._redis()
        messages = f"{queue}.msgs"
        getattr(self.tasks, task).send()
        old = redis.redis.lpop(queue)
        raw = redis.redis.hget(messages, old)
        redis.redis.hdel(messages, old)

        def push(pipe: Any, new: list[bytes]) -> None:
            pipe.hset(messages, new[0], replace_all(raw, [old], new))
            pipe.rpush(queue, new[0])

        redis.copy_messages(n, push, [old])

    def worker_argv(self, mode: str) -> list[str]:
        procs, threads = {"one": (1, 8), "two": (2, 8), "io": (1, self.io_concurrency)}[mode]
        return ["dramatiq", "tests.bench.tasks_dramatiq", "-p", str(procs), "-t", str(threads),
                "-Q", self.tasks.QUEUE]

    def call(self, timeout: float) -> Any:
        return self.tasks.ping.send().get_result(block=True, timeout=int(timeout * 1000))


class Huey(System):
    name = "huey"
    brokers = ("redis",)  # Redis, SQLite and files; no AMQP

    def __init__(self, broker: Broker, io_concurrency: int) -> None:
        super().__init__(broker, io_concurrency)
        self.tasks = import_module("tests.bench.tasks_huey")
        self.queues = (self.tasks.huey.storage.queue_key,)
        self.configs = {"one": "-k thread -w 1", "two": "-k process -w 2",
                        "io": f"-k thread -w {io_concurrency}"}

    def enqueue(self, n: int, task: str = "noop") -> None:
        call = getattr(self.tasks, task)
        for _ in range(n):
            call()

    def redis_prequeue(self, n: int, task: str) -> None:
        queue, redis = self.tasks.huey.storage.queue_key, self._redis()
        result = getattr(self.tasks, task)()
        raw = redis.redis.lpop(queue)
        ids = [result.id.encode()]
        redis.copy_messages(n, lambda pipe, new: pipe.lpush(queue, replace_all(raw, ids, new)),
                            ids)

    def worker_argv(self, mode: str) -> list[str]:
        kind, workers = {"one": ("thread", 1), "two": ("process", 2),
                         "io": ("thread", self.io_concurrency)}[mode]
        return ["huey.bin.huey_consumer", "tests.bench.tasks_huey.huey", "-k", kind,
                "-w", str(workers), "-n", "-q"]

    def call(self, timeout: float) -> Any:
        return self.tasks.ping().get(blocking=True, timeout=timeout)


def installed(*needs: tuple[str, ...]) -> tuple[str, ...]:
    """The green pools whose modules are all installed: each of `needs` is the pool's name
    (its library's module too) and the other modules it needs."""
    from importlib.util import find_spec

    return tuple(need[0] for need in needs if all(find_spec(m) is not None for m in need))


PEERS: dict[str, type[System]] = {"celery": Celery, "dramatiq": Dramatiq, "huey": Huey}
ALL: dict[str, type[System]] = {"kernel": Kernel, **PEERS, "kernel-sqlite": KernelSqlite}


def wait_count(system: System, n: int, worker: WorkerProc, deadline: float) -> float:
    """Poll the counter (2 ms sleeps) until it reaches `n`; the time it did, perf_counter."""
    checked = time.perf_counter()
    while True:
        if system.count() >= n:
            return time.perf_counter()
        now = time.perf_counter()
        if now > deadline:
            raise RuntimeError(f"{system.name}: only {system.count()} of {n} tasks done in time"
                               f"\n{worker.output()}")
        if now - checked > 1:
            worker.check_alive()
            checked = now
        time.sleep(0.002)
