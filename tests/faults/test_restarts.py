"""Broker restarts under load: the broker process is killed (SIGKILL, a crash), kept down 3 s or
30 s, and started again on the same port and data (Redis: an append-only file fsynced on every
write; RabbitMQ: durable queues, persistent messages, publisher confirms), while two workers
run and the client sends throughout."""

from __future__ import annotations

import time

import pytest

from tests.faults.harness import RABBITMQ, REDIS, Broker, NewScenario, around


@pytest.mark.timeout(300)
@pytest.mark.parametrize("seconds", [30, 3])
@pytest.mark.parametrize("broker", [RABBITMQ, REDIS], indirect=True)
def test_broker_restart(broker: Broker, seconds: int,
                        new_scenario: NewScenario) -> None:
    server = broker.server
    assert server is not None
    scenario = new_scenario(f"broker restart, {seconds} s", broker)
    scenario.start_worker()
    scenario.start_worker()
    scenario.load()
    scenario.fault_begins()
    server.kill()
    time.sleep(seconds)  # the outage itself
    server.start()
    scenario.fault_over()
    scenario.finish(around(scenario))
