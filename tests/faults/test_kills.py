"""kill -9 under load: of a whole worker (a second one goes on, and the killed one's tasks come
back to it: on SQLite and Redis when their lease runs out, on RabbitMQ when the connection
drops), and of a prefork child (its worker gives its task back and starts another child)."""

from __future__ import annotations

import os
import signal

import pytest

from tests.faults.harness import (
    RABBITMQ,
    REDIS,
    SQLITE,
    Broker,
    NewScenario,
    processes_of,
    ran_in,
)

BROKERS = [SQLITE, REDIS, RABBITMQ]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("broker", BROKERS, indirect=True)
def test_kill_9_of_a_worker(broker: Broker, new_scenario: NewScenario) -> None:
    scenario = new_scenario("kill -9 of a worker", broker)
    victim = scenario.start_worker()
    scenario.start_worker()
    scenario.load()
    scenario.wait(lambda: any(r.pid == victim.pid for r in scenario.book.running()), 30,
                  "the victim to be running a task")
    scenario.kill(victim)
    scenario.finish(ran_in({victim.pid}))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("broker", BROKERS, indirect=True)
def test_kill_9_of_a_prefork_child(broker: Broker, new_scenario: NewScenario) -> None:
    scenario = new_scenario("kill -9 of a prefork child", broker)
    worker = scenario.start_worker("prefork", 2)
    scenario.load()
    children = processes_of(worker) - {worker.pid}
    pid = scenario.wait(lambda: next((r.pid for r in scenario.book.running()
                                      if r.pid in children), 0), 30, "a child to be running a task")
    scenario.fault_begins()
    os.kill(pid, signal.SIGKILL)
    scenario.fault_over()
    scenario.finish(ran_in({pid}))
