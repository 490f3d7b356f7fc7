"""Beat in tests: `running_beat` (the service on a thread of the test's process), and beat's
failover test, for any broker and schedule store: several ``kernel beat`` processes
on one schedule, the leader killed (SIGKILL) again and again, and every tick counted at the
broker::

    from kernel.testing.beat import failover_run

    def test_failover(tmp_path):
        report = failover_run(tmp_path, broker="redis://...", store="redis://...",
                              store_options={"schedule_key": "beat-test"})
        report.check()

`BeatReport.check` holds the run to beat's promise: no tick sent twice (task ids are derived
from (entry, due), so a duplicate shows), none lost but those a kill between a claim and its
send may lose (at most one per kill), and a new leader within twice the lease ttl.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from kernel.app import App
from kernel.beat.service import BeatService
from kernel.testing.servers import ServerProcess
from kernel.testing.transport import wait_for

APP_SOURCE = """
from kernel import App

app = App("beat-failover", broker={broker!r}, results=None, config={{
    "beat_schedule_store": {store!r},
    "beat_schedule_store_options": {options!r},
    "beat_lease_ttl": {ttl!r},
    "beat_max_loop_interval": 1.0,
    "beat_schedule": {{"tick": {{"task": "failover.tick", "schedule": {interval!r},
                                "options": {{"queue": {queue!r}}}}}}},
}})
"""


@dataclass
class BeatReport:
    """What a failover run counted."""

    interval: float
    ttl: float
    kills: int = 0
    #: seconds from each kill until another process led.
    failovers: list[float] = field(default_factory=list)
    #: ticks due from the first due time up to the last claimed one.
    expected: int = 0
    #: ticks the store counted as claimed.
    claimed: int = 0
    #: messages found at the broker, and their distinct task ids.
    delivered: int = 0
    distinct: int = 0

    @property
    def duplicated(self) -> int:
        return self.delivered - self.distinct

    @property
    def lost(self) -> int:
        return self.expected - self.distinct

    def summary(self) -> str:
        return (f"{self.kills} kills, failover {', '.join(f'{f:.2f}' for f in self.failovers)}"
                f" s; ticks expected {self.expected}, claimed {self.claimed}, delivered "
                f"{self.delivered}, duplicated {self.duplicated}, lost {self.lost}")

    def check(self) -> None:
        assert self.duplicated == 0, f"a tick was sent twice: {self.summary()}"
        assert self.lost <= self.kills, f"ticks were lost beyond the kills between claim and " \
            f"send: {self.summary()}"
        assert self.claimed - self.distinct <= self.kills, self.summary()
        slowest = max(self.failovers, default=0.0)
        assert slowest < 2 * self.ttl + 1, f"failover took {slowest:.2f} s with a lease of " \
            f"{self.ttl} s: {self.summary()}"


@contextmanager
def running_beat(app: App) -> Iterator[BeatService]:
    """The beat service of `app` on a thread for the block (as ``kernel worker -B`` runs it),
    stopped at the end, giving its lead up."""
    service = BeatService(app).start()
    try:
        yield service
    finally:
        service.stop()


def _led_by_another(app: App, dead: int) -> bool:
    return _leader_pid(app) not in (None, dead)


def _sent_since(sent: Callable[[], int], before: int) -> bool:
    return sent() >= before + 2


def _leader_pid(app: App) -> int | None:
    leader = app.schedule_store.leader()
    return None if leader is None else int(leader.owner.split(":")[-2])


def failover_run(tmp_path: Path, *, broker: str, store: str,
                 store_options: dict[str, Any] | None = None, processes: int = 3,
                 kills: int = 3, interval: float = 1.0, ttl: float = 2.0) -> BeatReport:
    """Run `processes` beat processes, kill the leader `kills` times (a replacement is started
    each time), stop them all, and count."""
    queue = f"beat-failover-{uuid.uuid4().hex[:8]}"
    module = f"beatapp_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(APP_SOURCE.format(
        broker=broker, store=store, options=dict(store_options or {}), ttl=ttl,
        interval=interval, queue=queue))
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path),
                                                       os.environ.get("PYTHONPATH")]))}
    sys.path.insert(0, str(tmp_path))
    try:
        app: App = __import__(module).app
    finally:
        sys.path.remove(str(tmp_path))
    report = BeatReport(interval, ttl)
    running: list[ServerProcess] = []
    started = 0

    def launch() -> None:
        nonlocal started
        started += 1
        running.append(ServerProcess(
            [sys.executable, "-m", "kernel", "-A", f"{module}:app", "beat", "-l", "info"],
            log=tmp_path / f"beat-{started}.log", cwd=tmp_path, env=env,
            name=f"beat {started}").start())

    def sent() -> int:
        state = app.schedule_store.states().get("tick")
        return state.run_count if state else 0

    try:
        for _ in range(processes):
            launch()
        wait_for(lambda: sent() >= 2, 30, "the first beat leader to send two ticks")
        for _ in range(kills):
            pid = wait_for(partial(_leader_pid, app), 10, "a beat leader") or 0
            victim = next(p for p in running if p.pid == pid)
            time.sleep(interval / 2)  # kill between ticks, not always right after one
            os.kill(pid, signal.SIGKILL)
            killed_at = time.monotonic()
            victim.wait(5)
            running.remove(victim)
            report.kills += 1
            launch()
            wait_for(partial(_led_by_another, app, pid), 4 * ttl + 5,
                     "another beat process to lead", interval=0.02)
            report.failovers.append(time.monotonic() - killed_at)
            before = sent()
            wait_for(partial(_sent_since, sent, before), 10, "the new leader to send two ticks")
    finally:
        for process in running:
            process.stop()
    state = app.schedule_store.states()["tick"]
    entry = json.loads(app.schedule_store.entries()["tick"])
    first = entry["anchor"] + interval
    report.expected = round((state.last_run - first) / interval) + 1
    report.claimed = state.run_count
    ids: Counter[str] = Counter()
    while deliveries := app.transport.fetch([queue], 500, 0.2):
        ids.update(d.envelope.headers["id"] for d in deliveries)
        assert all(d.envelope.headers.get("celery_beat_task") is True for d in deliveries)
        app.transport.ack(deliveries)
    report.delivered, report.distinct = sum(ids.values()), len(ids)
    app.close()
    return report
