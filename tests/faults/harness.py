"""One fault scenario from start to figures: the broker under test, real worker processes, a
client sending throughout, the fault in the middle, and the accounting at the end.

::

    scenario = new_scenario("kill -9 of a worker", broker)   # conftest.py's fixture
    victim = scenario.start_worker()
    scenario.start_worker()
    scenario.load()                   # the client sends; wait until work flows
    scenario.kill(victim)             # the fault: it begins and ends here
    scenario.finish(ran_in({victim.pid}))

`finish` waits for recovery, stops the client, waits until every task sent has run, the
broker holds nothing more of the queue and every result is SUCCESS, stops the workers, records
the figures (`figures.Row`) and then asserts: nothing lost, a task run twice only where
`forced` says the fault forced it, every worker not killed alive, working after the fault, and
stopped cleanly at the end.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil  # type: ignore[import-untyped]
import pytest
import redis

from kernel import App, states
from kernel.testing.servers import ServerProcess
from kernel.testing.transport import wait_for
from kernel.testing.workers import WorkerProcess, Workers, wait_succeeded
from kernel_redis.testing import RedisServer, held
from kernel_redis.transport import RedisTransport
from tests.faults.book import Book, Run
from tests.faults.figures import Row, record
from tests.faults.load import Send, Sender

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

#: completed runs before the fault: work flows on every worker.
WARM_UP = 40
#: seconds a try of a send may take beyond broker_connection_timeout on a loaded machine: a
#: send may write its PENDING record and then publish, and the client shares two cores.
TRY_SLACK = 1.5
#: tasks sent at once just before the fault, per pool slot of the scenario's workers: twice
#: what they prefetch (4 a slot, worker_prefetch_multiplier), so that they hold a full prefetch
#: when the fault comes (at the steady pace, far below their capacity, they hold next to
#: nothing), and little is left to drain after it.
BURST_PER_SLOT = 8
#: tasks sent after recovery that must run before the client stops: the pace is back.
AFTER = 40
#: seconds a scenario may take to recover once its fault is over.
RECOVERY_DEADLINE = 150.0


@dataclass
class Broker:
    """A broker a scenario runs on: `url` for the workers and the client, `results` for their
    result store, `outstanding(queue)` the messages of the queue the broker still has (ready,
    delayed, or held by a consumer, whether its lease runs or not), and `server`, the process
    to fault (None for SQLite, a file)."""

    name: str
    url: str
    results: str
    outstanding: Callable[[str], int]
    server: ServerProcess | None = None
    #: seconds between two calls of `outstanding` (it may be costly: rabbitmqctl).
    poll: float = 0.1


#: ``@pytest.mark.parametrize("broker", [...], indirect=True)`` values: conftest.py's fixtures.
SQLITE = pytest.param("on_sqlite", id="SQLite")
REDIS = pytest.param("on_redis", id="Redis")
RABBITMQ = pytest.param("on_rabbitmq", id="RabbitMQ")


def durable_redis(directory: Path, **options: Any) -> RedisServer:
    """A private redis-server that loses nothing it acknowledged when it is killed: its
    append-only file is fsynced on every write."""
    return RedisServer(directory, persist=True, extra=("--appendfsync", "always"), **options)


@contextmanager
def broker_on_redis(server: RedisServer, results: str | None = None) -> Iterator[Broker]:
    """A `Broker` on `server` (results there too, unless `results` says where)."""
    transport = RedisTransport(server.url)
    raw = redis.Redis.from_url(server.url)
    try:
        yield Broker("Redis", server.url, results or server.url,
                     lambda queue: transport.size(queue) + held(raw, queue), server)
    finally:
        transport.close()
        raw.close()


Forced = Callable[[str, list[Run], Send], bool]
#: conftest.py's ``new_scenario`` fixture: ``new_scenario(title, broker, **options)``.
NewScenario = Callable[..., "Scenario"]


def processes_of(worker: WorkerProcess) -> set[int]:
    """The worker's pid and its descendants' (prefork children run under a fork server)."""
    try:
        children = psutil.Process(worker.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return {worker.pid}
    return {worker.pid, *(child.pid for child in children)}


def ran_in(pids: Collection[int]) -> Forced:
    """A second run is forced when one run was in a process the fault hit (killed, stopped):
    it may have been under way, or finished but not yet acknowledged."""
    return lambda task_id, runs, send: any(r.pid in pids for r in runs)


def around(scenario: Scenario) -> Forced:
    """A second run is forced when the first started before the fault ended (it ran, or waited
    for its acknowledgement, while the broker was away), or when a send raised: the broker may
    have had the message although the send failed, and the client sent it again."""
    return lambda task_id, runs, send: (send.raised > 0 or runs[0].started < scenario.ended)


def never(task_id: str, runs: list[Run], send: Send) -> bool:
    return False


class Scenario:
    """See the module. `lease` is the workers' ``worker_lease_seconds``; the client sends
    `rate` tasks a second, each working `work` seconds."""

    def __init__(self, title: str, broker: Broker, logs: Path, *, lease: float = 30.0,
                 rate: float = 20.0, work: float = 0.05) -> None:
        self.title = title
        self.broker = broker
        self.queue = f"faults-{uuid.uuid4().hex[:12]}"
        self.book = Book(logs / "book")
        self.workers = Workers(
            "tests.faults.tasks:app", broker=broker.url, results=broker.results, path=ROOT,
            logs=logs, queue=self.queue,
            env={"FAULTS_QUEUE": self.queue, "FAULTS_LEASE": str(lease),
                 "FAULTS_BOOK": str(self.book.path)})
        # The client has an App of its own: the test's thread reads results through the other.
        self.client = App("faults-client", broker=broker.url, config={
            "task_default_queue": self.queue, "result_backend": broker.results})
        self.sender = Sender(self.client, self.queue, rate=rate, work=work)
        self.killed: set[WorkerProcess] = set()
        self.slots = 0
        self.started = self.ended = 0.0
        self.outage = 0.0

    # ------------------------------------------------------------------ before the fault

    def start_worker(self, pool: str = "threads", concurrency: int = 4) -> WorkerProcess:
        self.slots += concurrency
        return self.workers.start(pool, concurrency, loglevel="info").wait_ready()

    def load(self) -> None:
        """Start the client; once work flows (`WARM_UP` tasks ran to their end), send a burst
        (`BURST_PER_SLOT`) and return when it is sent: the fault comes now."""
        self.sender.start()
        self.wait(lambda: len(self.book.completed()) >= WARM_UP, 60, f"{WARM_UP} tasks to run")
        burst = BURST_PER_SLOT * self.slots
        mark = len(self.sender.sends())
        self.sender.burst(burst)
        self.wait(lambda: len([s for s in self.sender.sends()[mark:] if s.sent]) >= burst, 60,
                  f"a burst of {burst} tasks to be sent")

    def wait(self, predicate: Callable[[], T], timeout: float, what: str,
             interval: float = 0.1) -> T:
        """`wait_for` (what `predicate` returned) that also fails as soon as the client hangs
        or dies, and says what the workers logged."""
        def done() -> T:
            self.sender.check()
            return predicate()

        try:
            return wait_for(done, timeout, what, interval=interval)
        except AssertionError as exc:
            raise AssertionError(f"{exc} ({self.describe()})") from None

    def describe(self) -> str:
        return (f"sent {len(self.sender.sent())}, completed {len(self.book.completed())}; "
                f"{self.workers.describe()}")

    # ------------------------------------------------------------------ the fault

    def fault_begins(self) -> None:
        self.started = time.monotonic()

    def fault_over(self) -> None:
        """The fault has ended now (the server answers, the link is up, the worker resumed;
        a kill ends as it begins)."""
        self.ended = time.monotonic()
        self.outage = self.ended - self.started

    def kill(self, worker: WorkerProcess) -> None:
        """kill -9 of `worker` and everything it started: a fault over at once."""
        self.fault_begins()
        worker.kill()
        self.killed.add(worker)
        self.fault_over()

    # ------------------------------------------------------------------ after the fault

    def recovered(self) -> float | None:
        """Seconds from the fault's end until every task tried before it, and the first one
        tried after it, had run to its end; None while that has not happened."""
        sends = self.sender.sends()
        before = [s for s in sends if s.first_try < self.ended]
        after = [s for s in sends if s.first_try >= self.ended][:1]
        if not after:
            return None
        completed = self.book.completed()
        ends = [completed.get(s.task_id) for s in before + after]
        if any(end is None for end in ends):
            return None
        return max(0.0, max(e for e in ends if e is not None) - self.ended)

    def finish(self, forced: Forced, *, note: str = "") -> Row:
        """Wait for the end, record the figures (whatever happened), then assert what the
        module says."""
        recover: float | None = None
        failures: list[AssertionError] = []

        def over() -> bool:
            nonlocal recover
            recover = self.recovered()
            return recover is not None

        try:
            self.wait(over, RECOVERY_DEADLINE, "the work to recover")
            mark = len(self.sender.sends())
            self.wait(lambda: self.ran_since(mark) >= AFTER, 60,
                      f"{AFTER} more tasks to run after the recovery")
            # A worker may come back seconds after another (its result store's retries back
            # off) and find the work taken: the client keeps sending until each has run some.
            self.wait(lambda: not self.idle(self.live_processes()), 60,
                      "every live worker to run a task after the fault")
        except AssertionError as exc:
            failures.append(exc)
        try:
            self.sender.stop()
        except AssertionError as exc:
            failures.append(exc)
        sent = self.sender.sent()
        unsettled: set[str] = set()
        try:
            self.wait(lambda: set(sent) <= set(self.book.completed()), 60,
                      "every task sent to run to its end")
            self.wait(lambda: self.broker.outstanding(self.queue) == 0, 90,
                      "the broker to hold nothing more of the queue", interval=self.broker.poll)
            wait_succeeded(self.workers.client, sent, 60, self.describe)
        except AssertionError as exc:
            failures.append(exc)
            unsettled = {i for i in sent
                         if self.workers.client.AsyncResult(i).state != states.SUCCESS}
        alive = [w for w in self.workers.processes if w not in self.killed]
        crashed = [w for w in alive if not w.running]
        pids = self.live_processes()
        self.close()
        runs = self.book.runs()
        slowest = max((s.sent - s.first_try for s in self.sender.sends() if s.sent), default=0)
        row = Row(self.title, self.broker.name, round(self.outage, 2), len(sent),
                  self.sender.raised, round(slowest, 2), round(self.sender.longest_try, 2),
                  sum(1 for i in sent if i in runs),
                  len(set(self.lost(sent)) | unsettled), len(self.twice()),
                  None if recover is None else round(recover, 2), note)
        record(row)
        if failures:
            raise failures[0]
        self.check(row, forced, crashed, pids)
        return row

    def close(self) -> None:
        """Stop the workers (warm, then by force) and the client; safe to call again."""
        self.sender.halt()
        self.workers.close()
        self.client.close()

    def live_processes(self) -> dict[WorkerProcess, set[int]]:
        """Each worker not killed by the scenario, with its processes' pids."""
        return {w: processes_of(w) for w in self.workers.processes if w not in self.killed}

    def idle(self, alive: dict[WorkerProcess, set[int]]) -> list[WorkerProcess]:
        """Workers of `alive` none of whose processes started a task after the fault ended."""
        after = {r.pid for runs in self.book.runs().values() for r in runs
                 if r.started > self.ended}
        return [w for w, pids in alive.items() if not pids & after]

    def ran_since(self, mark: int) -> int:
        """Tasks first tried after the `mark`-th that ran to their end."""
        completed = self.book.completed()
        return sum(1 for s in self.sender.sends()[mark:] if s.task_id in completed)

    def lost(self, sent: list[str]) -> list[str]:
        """Sent tasks that never ran to their end (`finish` adds those whose result is not
        SUCCESS)."""
        completed = self.book.completed()
        return [i for i in sent if i not in completed]

    def twice(self) -> dict[str, list[Run]]:
        return {i: runs for i, runs in self.book.runs().items() if len(runs) > 1}

    def check(self, row: Row, forced: Forced, crashed: list[WorkerProcess],
              alive: dict[WorkerProcess, set[int]]) -> None:
        assert not self.sender.errors, \
            f"sends must raise ConnectionFailed, not: {sorted(set(self.sender.errors))[:3]}"
        assert row.lost == 0, f"{row.lost} task(s) lost: {self.lost(self.sender.sent())[:5]}"
        limit = self.client.conf.broker_connection_timeout + TRY_SLACK
        assert row.longest_try <= limit, (
            f"one try of a send took {row.longest_try:.1f} s: a send must give up within "
            f"broker_connection_timeout ({self.client.conf.broker_connection_timeout} s)")
        sends = {s.task_id: s for s in self.sender.sends()}
        unforced = {i: runs for i, runs in self.twice().items()
                    if i not in sends or not forced(i, runs, sends[i])}
        assert not unforced, (f"{len(unforced)} task(s) ran more than once though the fault did "
                              f"not force it: {dict(list(unforced.items())[:3])}")
        assert not crashed, f"workers died during the scenario: {crashed}"
        idle = self.idle(alive)
        assert not idle, f"workers alive but idle since the fault ended: {idle}"
        unclean = [w for w in alive if w.returncode != 0]
        assert not unclean, f"workers did not stop cleanly (exit codes): {unclean}"
