"""One adapter per system: how to send its tasks, fill its queue fast, start its worker in each
mode, and make one round trip. Task modules are imported when a system is first used, so a
run with ``--only kernel`` needs neither the peers nor Redis."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from abc import ABC, abstractmethod
from importlib import import_module
from typing import Any

from tests.bench import env
from tests.bench.procs import WorkerProc

#: worker modes: one process, two processes, and the I/O-bound pool at `io_concurrency`.
MODES = ("one", "two", "io")
CHUNK = 1000


class System(ABC):
    name: str
    #: what each worker mode runs, shown under the table: {mode: description}.
    configs: dict[str, str]
    has_batch = False
    #: worker modes tried for the I/O-bound row; the best is recorded.
    io_modes: tuple[str, ...] = ("io",)
    #: measured in the first run only: absolute figures with no peer on its broker to alternate
    #: with, so the median of several runs adds time and no fairness.
    first_run_only = False

    def __init__(self, io_concurrency: int) -> None:
        self.io_concurrency = io_concurrency

    @abstractmethod
    def reset(self) -> None:
        """Empty queues and the counter (the next run starts from nothing)."""

    @abstractmethod
    def count(self) -> int:
        """Tasks done so far (the counter every task body increments)."""

    @abstractmethod
    def enqueue(self, n: int, task: str = "noop") -> None:
        """Publish `n` tasks one call at a time, the way a user would."""

    def enqueue_batch(self, n: int, task: str = "noop") -> None:
        raise NotImplementedError

    def enqueue_pipelined(self, n: int, task: str = "noop") -> None:
        raise NotImplementedError

    def prequeue(self, n: int, task: str) -> None:
        """Fill the queue with `n` tasks as fast as possible (untimed set-up for a drain)."""
        self.enqueue(n, task)

    @abstractmethod
    def worker_argv(self, mode: str) -> list[str]: ...

    def worker_env(self) -> dict[str, str]:
        return {}

    def start_worker(self, mode: str) -> WorkerProc:
        return WorkerProc(self.worker_argv(mode), self.worker_env())

    @abstractmethod
    def call(self, timeout: float) -> Any:
        """One submit-and-wait of the ping task; returns its result."""

    def close(self) -> None:
        """Release the driver's connections and files."""


class RedisSystem(System):
    """A system on the benchmark's Redis database."""

    def __init__(self, io_concurrency: int) -> None:
        super().__init__(io_concurrency)
        self.redis: Any = env.redis_client()

    def reset(self) -> None:
        self.redis.flushdb()

    def count(self) -> int:
        return int(self.redis.get(env.COUNTER_KEY) or 0)

    def copy_messages(self, n: int, push: Any, ids: list[bytes]) -> None:
        """Call ``push(pipe, new_ids)`` `n` times in pipelines, each with fresh uuid4s in place
        of `ids` (same length, so pickled and JSON forms stay valid)."""
        pipe = self.redis.pipeline(transaction=False)
        for i in range(n):
            push(pipe, [str(uuid.uuid4()).encode() for _ in ids])
            if i % CHUNK == CHUNK - 1:
                pipe.execute()
        pipe.execute()


def replace_all(data: bytes, old: list[bytes], new: list[bytes]) -> bytes:
    for a, b in zip(old, new, strict=True):
        data = data.replace(a, b)
    return data


class Kernel(System):
    name = "kernel"
    has_batch = True

    def __init__(self, io_concurrency: int, url: str) -> None:
        super().__init__(io_concurrency)
        self.url = url
        self.configs = {"one": "-P solo", "two": "-P prefork -c 2",
                        "io": f"-P asyncio -c {io_concurrency}"}
        self.tasks = import_module("tests.bench.tasks_kernel")
        self.counter = "redis"
        self.app = self.tasks.make_app(url, self.counter)

    def _task(self, task: str) -> Any:
        return self.app.tasks[f"bench.{task}"]

    def enqueue(self, n: int, task: str = "noop") -> None:
        delay = self._task(task).delay
        for _ in range(n):
            delay()

    def enqueue_pipelined(self, n: int, task: str = "noop") -> None:
        with self.app.pipelined():
            self.enqueue(n, task)

    def enqueue_batch(self, n: int, task: str = "noop") -> None:
        target = self._task(task)
        for start in range(0, n, CHUNK):
            self.app.send_many([(target, (), {})] * min(CHUNK, n - start))

    def prequeue(self, n: int, task: str) -> None:
        self.enqueue_batch(n, task)

    def worker_argv(self, mode: str) -> list[str]:
        pool = {"one": ["-P", "solo", "-c", "1"], "two": ["-P", "prefork", "-c", "2"],
                "io": ["-P", "asyncio", "-c", str(self.io_concurrency)]}[mode]
        return ["kernel", "worker", "-A", "tests.bench.tasks_kernel:app", *pool,
                "-Q", self.tasks.QUEUE, "--loglevel", "WARNING"]

    def worker_env(self) -> dict[str, str]:
        return {env.KERNEL_URL: self.url, env.COUNTER: self.counter}

    def call(self, timeout: float) -> Any:
        return self._task("ping").delay().get(timeout=timeout)

    def close(self) -> None:
        self.app.close()


class KernelRedis(Kernel, RedisSystem):
    def __init__(self, io_concurrency: int) -> None:
        super().__init__(io_concurrency, env.redis_url())

    def message_bytes(self) -> bytes:
        """One noop message exactly as kernel stores it in Redis (for the raw limit)."""
        self.reset()
        self._task("noop").delay()
        # The list is the queue's priority sub-list (kombu's layout), so look it up.
        keys = self.redis.keys(f"{self.tasks.QUEUE}*")
        (key,) = [k for k in keys if self.redis.type(k) == b"list"]
        raw: bytes = self.redis.lindex(key, 0)
        self.reset()
        return raw


class KernelSqlite(Kernel):
    """The embedded default: broker, results and counter in one SQLite file (a new one per run)."""

    name = "kernel-sqlite"
    first_run_only = True

    def __init__(self, io_concurrency: int) -> None:
        self.dir = tempfile.mkdtemp(prefix="kernel-bench-")
        self.runs = 0
        super().__init__(io_concurrency, self._next_url())
        self.counter = "results"
        self.reset()

    def _next_url(self) -> str:
        self.runs += 1
        return f"sqlite:///{self.dir}/run{self.runs}.db"

    def reset(self) -> None:
        self.app.close()
        self.url = self._next_url()
        self.app = self.tasks.make_app(self.url, self.counter)

    def count(self) -> int:
        value = self.app.backend.store.get(env.COUNTER_KEY)
        return int(value or 0)

    def close(self) -> None:
        super().close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Celery(RedisSystem):
    name = "celery"

    def __init__(self, io_concurrency: int) -> None:
        super().__init__(io_concurrency)
        self.tasks = import_module("tests.bench.tasks_celery")
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

    def enqueue(self, n: int, task: str = "noop") -> None:
        delay = getattr(self.tasks, task).delay
        for _ in range(n):
            delay()

    def prequeue(self, n: int, task: str) -> None:
        queue = self.tasks.QUEUE
        getattr(self.tasks, task).delay()
        raw = self.redis.lpop(queue)
        message = json.loads(raw)
        ids = [message["headers"]["id"].encode(), message["properties"]["delivery_tag"].encode()]
        self.copy_messages(n, lambda pipe, new: pipe.lpush(queue, replace_all(raw, ids, new)),
                           ids)

    def worker_argv(self, mode: str) -> list[str]:
        pool = {"one": ["-P", "solo", "-c", "1"], "two": ["-P", "prefork", "-c", "2"],
                "io": ["-P", "threads", "-c", str(self.io_concurrency)],
                "io-gevent": ["-P", "gevent", "-c", str(self.io_concurrency)]}[mode]
        return ["celery", "-A", "tests.bench.tasks_celery", "worker", *pool, "--without-gossip",
                "--without-mingle", "--without-heartbeat", "-Q", self.tasks.QUEUE,
                "--loglevel", "WARNING"]

    def call(self, timeout: float) -> Any:
        return self.tasks.ping.delay().get(timeout=timeout)


class Dramatiq(RedisSystem):
    name = "dramatiq"

    def __init__(self, io_concurrency: int) -> None:
        super().__init__(io_concurrency)
        self.tasks = import_module("tests.bench.tasks_dramatiq")
        self.configs = {"one": "-p 1 -t 8 (1 process, default threads)", "two": "-p 2 -t 8",
                        "io": f"-p 1 -t {io_concurrency}"}

    def enqueue(self, n: int, task: str = "noop") -> None:
        send = getattr(self.tasks, task).send
        for _ in range(n):
            send()

    def prequeue(self, n: int, task: str) -> None:
        queue = f"dramatiq:{self.tasks.QUEUE}"
        messages = f"{queue}.msgs"
        getattr(self.tasks, task).send()
        old = self.redis.lpop(queue)
        raw = self.redis.hget(messages, old)
        self.redis.hdel(messages, old)

        def push(pipe: Any, new: list[bytes]) -> None:
            pipe.hset(messages, new[0], replace_all(raw, [old], new))
            pipe.rpush(queue, new[0])

        self.copy_messages(n, push, [old])

    def worker_argv(self, mode: str) -> list[str]:
        procs, threads = {"one": (1, 8), "two": (2, 8), "io": (1, self.io_concurrency)}[mode]
        return ["dramatiq", "tests.bench.tasks_dramatiq", "-p", str(procs), "-t", str(threads),
                "-Q", self.tasks.QUEUE]

    def call(self, timeout: float) -> Any:
        return self.tasks.ping.send().get_result(block=True, timeout=int(timeout * 1000))


class Huey(RedisSystem):
    name = "huey"

    def __init__(self, io_concurrency: int) -> None:
        super().__init__(io_concurrency)
        self.tasks = import_module("tests.bench.tasks_huey")
        self.configs = {"one": "-k thread -w 1", "two": "-k process -w 2",
                        "io": f"-k thread -w {io_concurrency}"}

    def enqueue(self, n: int, task: str = "noop") -> None:
        call = getattr(self.tasks, task)
        for _ in range(n):
            call()

    def prequeue(self, n: int, task: str) -> None:
        queue = self.tasks.huey.storage.queue_key
        result = getattr(self.tasks, task)()
        raw = self.redis.lpop(queue)
        ids = [result.id.encode()]
        self.copy_messages(n, lambda pipe, new: pipe.lpush(queue, replace_all(raw, ids, new)),
                           ids)

    def worker_argv(self, mode: str) -> list[str]:
        kind, workers = {"one": ("thread", 1), "two": ("process", 2),
                         "io": ("thread", self.io_concurrency)}[mode]
        return ["huey.bin.huey_consumer", "tests.bench.tasks_huey.huey", "-k", kind,
                "-w", str(workers), "-n", "-q"]

    def call(self, timeout: float) -> Any:
        return self.tasks.ping().get(blocking=True, timeout=timeout)


PEERS: dict[str, type[RedisSystem]] = {"celery": Celery, "dramatiq": Dramatiq, "huey": Huey}


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
