"""The scale rows: kernel alone, once per run of the bench (there is no peer to alternate with,
and a million tasks three times would be the whole bench).

  backlog.*     a backlog of `Scale.backlog` small tasks on Redis, enqueued with the batch API
                (``backlog.enqueue``) and drained by a worker with 2 processes: the drain rate
                and the worker's mean RSS over the first tenth of the tasks and over the last
                (``backlog.first`` / ``.last``, ``backlog.rss_first`` / ``.rss_last``), which
                should stay flat, and the whole drain's rate (``backlog.drain``)
  queues        as many tasks as drain.one's spread over `Scale.queues` queues, one worker of 1
                process consuming all of them (compared with drain.one, one queue)

Both on Redis only.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.bench.procs import MIB
from tests.bench.systems import Kernel, wait_count

#: how often the driver reads the counter and the worker's memory during the backlog's drain.
SAMPLE_EVERY = 0.25
#: tasks per `send_many` call when filling the backlog.
BATCH = 1000


@dataclass(frozen=True)
class Scale:
    backlog: int
    queues: int


FULL = Scale(backlog=1_000_000, queues=100)
QUICK = Scale(backlog=2_000, queues=100)


def backlog(kernel: Kernel, n: int, record: Callable[[str, str, float], None]) -> None:
    kernel.reset()
    task = kernel.app.tasks["bench.noop"]
    start = time.perf_counter()
    for first in range(0, n, BATCH):
        kernel.app.send_many([(task, (), {})] * min(BATCH, n - first))
    record("backlog.enqueue", kernel.name, n / (time.perf_counter() - start))

    worker = kernel.start_worker("two")
    spawned = time.perf_counter()
    samples: list[tuple[float, int, int]] = []  # (time, tasks done, worker RSS)
    deadline = spawned + max(120.0, n / 200)
    try:
        while True:
            done = kernel.count()
            now = time.perf_counter()
            samples.append((now, done, worker.rss))
            if done >= n:
                break
            if now > deadline:
                raise RuntimeError(f"kernel: only {done} of {n} backlog tasks done in time\n"
                                   f"{worker.output()}")
            worker.check_alive()
            time.sleep(SAMPLE_EVERY)
    finally:
        worker.stop()
        kernel.reset()
    end = samples[-1][0]
    record("backlog.drain", kernel.name, n / (end - spawned))
    tenth = n // 10
    for name, low, high in (("first", 0, tenth), ("last", n - tenth, n)):
        window = _window(samples, low, high)
        (t0, c0, _), (t1, c1, _) = window[0], window[-1]
        record(f"backlog.{name}", kernel.name, (c1 - c0) / (t1 - t0))
        rss = [r for _, _, r in window if r]
        record(f"backlog.rss_{name}", kernel.name, statistics.mean(rss) / MIB if rss else 0.0)


def _window(samples: list[tuple[float, int, int]], low: int,
            high: int) -> list[tuple[float, int, int]]:
    """The samples from the last one at or below `low` tasks done to the first at or above
    `high` (the first tenth starts at the first task done, not at the worker's spawn: start-up
    is not throughput)."""
    if low == 0:
        started = next(i for i, s in enumerate(samples) if s[1] > 0)
        begin = max(0, started - 1)
    else:
        begin = max(i for i, s in enumerate(samples) if s[1] <= low)
    finish = next(i for i, s in enumerate(samples) if s[1] >= high)
    return samples[begin:max(finish, begin + 1) + 1]


def queues(kernel: Kernel, n: int, count: int,
           record: Callable[[str, str, float], None]) -> None:
    names = [f"{kernel.queues[0]}_{i}" for i in range(count)]
    kernel.reset()
    task = kernel.app.tasks["bench.noop"]
    per_queue, extra = divmod(n, count)
    for i, queue in enumerate(names):
        count = per_queue + (i < extra)
        for first in range(0, count, BATCH):
            kernel.app.send_many([(task, (), {})] * min(BATCH, count - first), queue=queue)
    start = time.perf_counter()
    worker = kernel.start_worker("one", names)
    try:
        end = wait_count(kernel, n, worker, start + max(60.0, n / 100))
    finally:
        worker.stop()
        kernel.reset()
    record("queues", kernel.name, n / (end - start))
