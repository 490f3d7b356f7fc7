"""Outages of one part while the rest runs: the result store alone going away, a network cut
between the workers and their broker, and a worker paused (SIGSTOP) past its lease."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.faults.harness import (
    REDIS,
    SQLITE,
    Broker,
    NewScenario,
    around,
    broker_on_redis,
    durable_redis,
    never,
    ran_in,
)
from tests.faults.netns import Namespace


@pytest.mark.timeout(300)
def test_result_store_down(tmp_path: Path, new_scenario: NewScenario) -> None:
    """The broker is fine; results go to a Redis of their own, killed for 10 s: workers keep
    each result and retry storing it, the message unacknowledged (and leased) meanwhile, so no
    task runs twice and no result is lost."""
    results = durable_redis(tmp_path / "results").start()
    server = durable_redis(tmp_path / "broker").start()
    try:
        with broker_on_redis(server, results=results.url) as broker:
            scenario = new_scenario("result store down, 10 s", broker)
            scenario.start_worker()
            scenario.start_worker()
            scenario.load()
            scenario.fault_begins()
            results.kill()
            time.sleep(10)  # the outage itself
            results.start()
            scenario.fault_over()
            scenario.finish(never)
    finally:
        server.kill()
        results.kill()


@pytest.mark.timeout(300)
def test_network_cut(tmp_path: Path, new_scenario: NewScenario) -> None:
    """Redis (broker and results) runs in a network namespace of the test's own; the workers
    and the client, on the host, reach it over a veth link that is taken down for 20 s."""
    with Namespace() as ns:
        server = durable_redis(tmp_path / "redis", host=ns.address, prefix=ns.prefix)
        try:
            server.start()
            with broker_on_redis(server) as broker:
                scenario = new_scenario("network cut, 20 s", broker)
                scenario.start_worker()
                scenario.start_worker()
                scenario.load()
                scenario.fault_begins()
                ns.cut()
                time.sleep(20)  # the outage itself
                ns.restore()
                scenario.fault_over()
                scenario.finish(around(scenario))
        finally:
            server.kill()  # before the namespace goes: a process inside would keep it


#: worker_lease_seconds in the SIGSTOP scenario, and how long the worker is stopped.
LEASE, STOPPED = 3.0, 10.0


@pytest.mark.timeout(300)
@pytest.mark.parametrize("broker", [SQLITE, REDIS], indirect=True)
def test_sigstop_past_the_lease(broker: Broker, new_scenario: NewScenario) -> None:
    """A worker stopped for longer than its lease: the other worker runs what the stopped one
    held once the leases run out; resumed, the stopped one finishes what it was running (run
    twice: forced by the lease's end) and goes on working."""
    scenario = new_scenario("SIGSTOP past the lease", broker, lease=LEASE)
    stopped = scenario.start_worker()
    scenario.start_worker()
    scenario.load()
    scenario.wait(lambda: any(r.pid == stopped.pid for r in scenario.book.running()), 30,
                  "the worker to be running a task")
    scenario.fault_begins()
    os.kill(stopped.pid, signal.SIGSTOP)
    try:
        time.sleep(STOPPED)  # the fault itself
    finally:
        os.kill(stopped.pid, signal.SIGCONT)
    scenario.fault_over()
    scenario.finish(ran_in({stopped.pid}), note=f"lease {LEASE:g} s, stopped {STOPPED:g} s")
