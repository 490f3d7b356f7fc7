"""The measurements. Each scenario runs every system in turn, `runs` times (A B C A B C ...), on
the same broker, starting from empty queues; the report takes the median of the runs. One
`Bench` is one broker's table.

Rows (ids as in the JSON):
  enqueue.call / .pipelined / .batch / .unconfirmed
                                tasks published per second from one process (kernel: `delay` in
                                a loop / the same loop in `app.pipelined()` / `send_many` / on
                                RabbitMQ, `delay` with confirm_publish=False; peers have none)
  drain.one / drain.two         pre-queued no-op tasks, results ignored, worker with 1 / 2
                                processes: tasks/s from spawning the worker to the last task done
  drain.events                  kernel's drain.one with task events on (-E), in the same turns
  rss.one / rss.two             peak RSS of that worker, process + children, MiB
  rtt.p50 / rtt.p99             submit -> result of sequential calls on a warm 1-process worker, ms
  rtt.untracked.*               the same, kernel without the PENDING record (task_track_sent off)
  io                            tasks that sleep 50 ms, drained at `io_concurrency`, tasks/s
                                (Redis only)
  green.gevent / .eventlet      `green` pre-queued tasks that each wait 50 ms on a socket (a
                                Redis BLPOP with a 0.05 s timeout), one worker of
                                `green_slots` greenlets (-P gevent / -P eventlet), against
                                Celery's same pools: tasks/s from the first task done to the
                                last, plus the 50 ms the first waited (start-up is not
                                throughput); Redis only
  green.*.seconds               that time, against the ideal: green x 50 ms / green_slots
  rss.green.* / slot.green.*    the worker's peak RSS, MiB, and that over its slots, KiB
  limit.*                       the bare client alone (redis-py, py-amqp) on kernel's message
                                bytes: the broker's ceiling (first run only)
  backlog.*, queues             kernel at scale, on Redis, once (`tests.bench.scale`)
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

from tests.bench import scale
from tests.bench.brokers import Broker
from tests.bench.procs import MIB, WorkerProc
from tests.bench.systems import Kernel, System, wait_count



@dataclass(frozen=True)
class Counts:
    enqueue: int
    drain: int
    rtt: int
    io: int
    io_concurrency: int
    runs: int
    warmup: int
    green: int
    green_slots: int


#: Enqueue rates are steady from the first thousand calls; 10,000 keeps Celery's (~1,500/s)
#: short. Drains stay at 20,000: a worker's start-up is part of their figure.
FULL = Counts(enqueue=10_000, drain=20_000, rtt=500, io=2_000, io_concurrency=100, runs=3,
              warmup=20, green=2_000, green_slots=500)
QUICK = Counts(enqueue=300, drain=300, rtt=30, io=100, io_concurrency=20, runs=1, warmup=3,
               green=200, green_slots=50)
#: how long each green row's task waits on its socket, seconds.
GREEN_WAIT = 0.05
GREEN_POOLS = ("gevent", "eventlet")

Samples = dict[str, dict[str, list[float]]]


class Bench:
    def __init__(self, broker: Broker, systems: list[System], counts: Counts, raw: bool,
                 log: Callable[[str], None], at_scale: scale.Scale | None = None) -> None:
        self.broker = broker
        self.systems = systems
        self.counts = counts
        self.raw = raw
        self.at_scale = at_scale
        self.log = log
        self.samples: Samples = defaultdict(lambda: defaultdict(list))
        self.began = time.perf_counter()

    def record(self, row: str, system: str, value: float) -> None:
        self.samples[row][system].append(value)
        unit = "ms" if row.startswith("rtt") else "MiB" if "rss" in row else "/s"
        elapsed = time.perf_counter() - self.began  # where the bench's own time goes
        self.log(f"{elapsed:6.0f}s {self.broker.name:<9} {row:<17} {system:<14} "
                 f"{value:>10.1f} {unit}")

    def _turns(self) -> Iterator[System]:
        """Each system once per run, alternating (A B A B ...)."""
        for run in range(self.counts.runs):
            for system in self.systems:
                if run == 0 or not system.first_run_only:
                    yield system

    def run(self) -> Samples:
        for system in self._turns():
            self.enqueue(system)
        # Events on and off in the same turn, one after the other: the ratio of the two
        # is the row's point, and the machine's load drifts. Which goes first alternates
        # from turn to turn: the second of two drains meets the broker the first one left
        # (RabbitMQ still settling its acks), which must not weigh on one side only.
        for modes in (("one", "events"), ("two",)):
            for turn, system in enumerate(self._turns()):
                for mode in modes if turn % 2 == 0 else modes[::-1]:
                    if mode in system.modes:
                        self.drain(system, mode)
        for system in self._turns():
            if system.round_trips():
                self.round_trip(system)
        if self.broker.name == "redis":
            # Pools against pools: the broker matters little with tasks of 50 ms, so one
            # broker's table holds it (and the whole run stays within its time).
            for system in self._turns():
                if system.name != "kernel-sqlite":
                    self.io_bound(system)
            for pool in GREEN_POOLS:
                for system in self._turns():
                    if pool in system.green_pools and system.name != "kernel-sqlite":
                        self.green_bound(system, pool)
        if self.raw:
            # Once, like kernel-sqlite: a ceiling with no system to alternate with.
            self.limit()
        kernel = next((s for s in self.systems if type(s) is Kernel), None)
        if self.at_scale and kernel and self.broker.name == "redis":
            scale.queues(kernel, self.counts.drain, self.at_scale.queues, self.record)
            if self.at_scale.backlog:
                scale.backlog(kernel, self.at_scale.backlog, self.record)
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
        start = time.perf_counter()
        if system.enqueue_unconfirmed(n):
            self.record("enqueue.unconfirmed", system.name, n / (time.perf_counter() - start))
        system.reset()

    def drain(self, system: System, mode: str) -> None:
        try:
            rate, rss = self.timed_drain(system, mode, self.counts.drain, "noop")
        except PeerStuck as exc:
            self.log(f"  {exc}: this run of {system.name} is left out")
            return
        self.record(f"drain.{mode}", system.name, rate)
        if mode != "events":
            self.record(f"rss.{mode}", system.name, rss / MIB)

    def io_bound(self, system: System) -> None:
        rates = []
        for mode in system.io_modes:
            try:
                rate, _ = self.timed_drain(system, mode, self.counts.io, "sleepy")
            except PeerStuck as exc:
                self.log(f"  {exc}: this run of {system.name} {mode} is left out")
                continue
            if len(system.io_modes) > 1:
                self.log(f"  ({system.name} {mode}: {rate:.1f} /s)")
            rates.append(rate)
        if rates:
            self.record("io", system.name, max(rates))

    def green_bound(self, system: System, pool: str) -> None:
        n, slots = self.counts.green, self.counts.green_slots
        system.reset()
        system.prequeue(n, "socket_wait")
        worker = WorkerProc(system.green_argv(pool, slots), system.worker_env())
        try:
            first, last = first_and_last(system, n, worker, time.perf_counter() + 60 + n / 100)
        except RuntimeError as exc:
            if isinstance(system, Kernel):
                raise
            self.log(f"  {str(exc).splitlines()[0]}: this run of {system.name} is left out")
            return
        finally:
            worker.stop()
        system.reset()
        took = last - first + GREEN_WAIT
        self.record(f"green.{pool}", system.name, n / took)
        self.record(f"green.{pool}.seconds", system.name, took)
        self.record(f"rss.green.{pool}", system.name, worker.peak_rss / MIB)
        self.record(f"slot.green.{pool}", system.name, worker.peak_rss / slots / 1024)

    def timed_drain(self, system: System, mode: str, n: int, task: str) -> tuple[float, int]:
        """Pre-queue `n` tasks, spawn the worker, wait for the counter to reach `n`: the rate
        from spawn to the last task done, and the worker's peak RSS."""
        system.reset()
        system.prequeue(n, task)
        start = time.perf_counter()
        worker = system.start_worker(mode)
        try:
            end = wait_count(system, n, worker, start + max(60.0, n / 100))
        except RuntimeError as exc:
            if isinstance(system, Kernel):
                raise  # kernel's own failure stops the bench
            raise PeerStuck(str(exc).splitlines()[0]) from None
        finally:
            worker.stop()
        system.reset()
        return n / (end - start), worker.peak_rss

    def round_trip(self, system: System) -> None:
        system.reset()
        worker = system.start_worker("one")
        calls = {"rtt": system.call, **system.other_calls()}
        try:
            system.call(timeout=60)  # waits out the worker's start-up
            for prefix, call in calls.items():
                for _ in range(self.counts.warmup):
                    call(10)
                latencies = []
                for _ in range(self.counts.rtt):
                    start = time.perf_counter()
                    call(10)
                    latencies.append((time.perf_counter() - start) * 1000)
                latencies.sort()
                self.record(f"{prefix}.p50", system.name, percentile(latencies, 0.50))
                self.record(f"{prefix}.p99", system.name, percentile(latencies, 0.99))
        finally:
            worker.stop()
        system.reset()

    def limit(self) -> None:
        """The bare client on kernel's message (one sampled from a kernel client)."""
        kernel = Kernel(self.broker, self.counts.io_concurrency)
        try:
            message = self.broker.sample(kernel)
        finally:
            kernel.close()
        self.broker.limit(self.counts.enqueue, message, self.record)


class PeerStuck(Exception):
    """A peer's worker did not finish a drain in time (Celery's has hung here once): that run
    is left out of its median, and the bench goes on."""


def first_and_last(system: System, n: int, worker: WorkerProc,
                   deadline: float) -> tuple[float, float]:
    """When the first of `n` tasks was done, and the last (perf_counter)."""
    first = None
    while True:
        done = system.count()
        now = time.perf_counter()
        if first is None and done:
            first = now
        if done >= n:
            assert first is not None
            return first, now
        if now > deadline:
            raise RuntimeError(f"{system.name}: only {done} of {n} tasks done in time"
                               f"\n{worker.output()}")
        worker.check_alive()
        time.sleep(0.002)


def percentile(ordered: list[float], q: float) -> float:
    """The nearest-rank percentile of an ascending list."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def counts_dict(counts: Counts) -> dict[str, int]:
    return asdict(counts)
