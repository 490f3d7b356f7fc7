"""The measurements. Each scenario runs every system in turn, `runs` times (A B C A B C ...), on
the same Redis, starting from an empty database; the report takes the median of the runs.

Rows (ids as in the JSON):
  enqueue.call / .pipelined / .batch
                                tasks published per second from one process (kernel: `delay` in
                                a loop / the same loop in `app.pipelined()` / `send_many`; peers
                                have neither)
  drain.one / drain.two         pre-queued no-op tasks, results ignored, worker with 1 / 2
                                processes: tasks/s from spawning the worker to the last task done
  rss.one / rss.two             peak RSS of that worker, process + children, MiB
  rtt.p50 / rtt.p99             submit -> result of sequential calls on a warm 1-process worker, ms
  io                            tasks that sleep 50 ms, drained at `io_concurrency`, tasks/s
  limit.*                       redis-py alone on kernel's message bytes (the broker's ceiling)
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from tests.bench import env
from tests.bench.systems import KernelRedis, System, wait_count

MIB = 1024 * 1024
PIPELINE = 100


@dataclass(frozen=True)
class Counts:
    enqueue: int
    drain: int
    rtt: int
    io: int
    io_concurrency: int
    runs: int
    warmup: int


FULL = Counts(enqueue=20_000, drain=20_000, rtt=500, io=2_000, io_concurrency=100, runs=3,
              warmup=20)
QUICK = Counts(enqueue=300, drain=300, rtt=30, io=100, io_concurrency=20, runs=1, warmup=3)

Samples = dict[str, dict[str, list[float]]]


class Bench:
    def __init__(self, systems: list[System], counts: Counts, raw: bool,
                 log: Callable[[str], None]) -> None:
        self.systems = systems
        self.counts = counts
        self.raw = raw
        self.log = log
        self.samples: Samples = defaultdict(lambda: defaultdict(list))

    def record(self, row: str, system: str, value: float) -> None:
        self.samples[row][system].append(value)
        unit = "ms" if row.startswith("rtt") else "MiB" if row.startswith("rss") else "/s"
        self.log(f"{row:<14} {system:<14} {value:>10.1f} {unit}")

    def _turns(self) -> Iterator[System]:
        """Each system once per run, alternating (A B A B ...)."""
        for run in range(self.counts.runs):
            for system in self.systems:
                if run == 0 or not system.first_run_only:
                    yield system

    def run(self) -> Samples:
        runs = range(self.counts.runs)
        for system in self._turns():
            self.enqueue(system)
        for mode in ("one", "two"):
            for system in self._turns():
                self.drain(system, mode)
        for system in self._turns():
            self.round_trip(system)
        for system in self._turns():
            if system.name != "kernel-sqlite":  # the I/O row is on Redis only
                self.io_bound(system)
        if self.raw:
            for _ in runs:
                self.limit()
        return self.samples

    # ------------------------------------------------------------------ scenarios

    def enqueue(self, system: System) -> None:
        n = self.counts.enqueue
        system.reset()
        start = time.perf_counter()
        system.enqueue(n)
        self.record("enqueue.call", system.name, n / (time.perf_counter() - start))
        if system.has_batch:
            system.reset()
            start = time.perf_counter()
            system.enqueue_pipelined(n)
            self.record("enqueue.pipelined", system.name, n / (time.perf_counter() - start))
            system.reset()
            start = time.perf_counter()
            system.enqueue_batch(n)
            self.record("enqueue.batch", system.name, n / (time.perf_counter() - start))
        system.reset()

    def drain(self, system: System, mode: str) -> None:
        rate, rss = self.timed_drain(system, mode, self.counts.drain, "noop")
        self.record(f"drain.{mode}", system.name, rate)
        self.record(f"rss.{mode}", system.name, rss / MIB)

    def io_bound(self, system: System) -> None:
        rates = []
        for mode in system.io_modes:
            rate, _ = self.timed_drain(system, mode, self.counts.io, "sleepy")
            if len(system.io_modes) > 1:
                self.log(f"  ({system.name} {mode}: {rate:.1f} /s)")
            rates.append(rate)
        self.record("io", system.name, max(rates))

    def timed_drain(self, system: System, mode: str, n: int, task: str) -> tuple[float, int]:
        """Pre-queue `n` tasks, spawn the worker, wait for the counter to reach `n`: the rate
        from spawn to the last task done, and the worker's peak RSS."""
        system.reset()
        system.prequeue(n, task)
        start = time.perf_counter()
        worker = system.start_worker(mode)
        try:
            end = wait_count(system, n, worker, start + max(60.0, n / 100))
        finally:
            worker.stop()
        system.reset()
        return n / (end - start), worker.peak_rss

    def round_trip(self, system: System) -> None:
        system.reset()
        worker = system.start_worker("one")
        try:
            system.call(timeout=60)  # waits out the worker's start-up
            for _ in range(self.counts.warmup):
                system.call(timeout=10)
            latencies = []
            for _ in range(self.counts.rtt):
                start = time.perf_counter()
                system.call(timeout=10)
                latencies.append((time.perf_counter() - start) * 1000)
        finally:
            worker.stop()
        system.reset()
        latencies.sort()
        self.record("rtt.p50", system.name, percentile(latencies, 0.50))
        self.record("rtt.p99", system.name, percentile(latencies, 0.99))

    def limit(self) -> None:
        """redis-py alone with kernel's message bytes: LPUSH and BRPOP one at a time and in
        pipelines, and a bare consumer loop (BRPOP + json.loads + INCR)."""
        kernel = KernelRedis(self.counts.io_concurrency)
        try:
            message = kernel.message_bytes()
        finally:
            kernel.close()
        client: Any = env.redis_client()
        n, queue, name = self.counts.enqueue, "bench_raw", "redis-py"

        def timed(row: str, body: Callable[[], None]) -> None:
            start = time.perf_counter()
            body()
            self.record(row, name, n / (time.perf_counter() - start))

        def pipelined(command: Callable[[Any], None]) -> None:
            for start in range(0, n, PIPELINE):
                pipe = client.pipeline(transaction=False)
                for _ in range(min(PIPELINE, n - start)):
                    command(pipe)
                pipe.execute()

        def consume() -> None:
            for _ in range(n):
                json.loads(client.brpop(queue, 1)[1])
                client.incr(env.COUNTER_KEY)

        client.flushdb()
        timed("enqueue.call", lambda: [client.lpush(queue, message) for _ in range(n)])
        timed("limit.brpop", lambda: [client.brpop(queue, 1) for _ in range(n)])
        timed("enqueue.batch", lambda: pipelined(lambda pipe: pipe.lpush(queue, message)))
        timed("limit.brpop_pipelined", lambda: pipelined(lambda pipe: pipe.brpop(queue, 1)))
        pipelined(lambda pipe: pipe.lpush(queue, message))
        timed("drain.one", consume)
        client.flushdb()
        client.close()


def percentile(ordered: list[float], q: float) -> float:
    """The nearest-rank percentile of an ascending list."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def counts_dict(counts: Counts) -> dict[str, int]:
    return asdict(counts)
