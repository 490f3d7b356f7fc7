"""Beat on a Redis schedule store that goes away: no tick is sent while the store cannot be
reached (no tick without a claim), the outage is logged once, and beat recovers when Redis is
back: the ticks that fell due meanwhile are sent once, late, and none twice."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest

from kernel import App
from kernel.testing.beat import running_beat
from kernel.testing.transport import wait_for
from kernel_redis.testing import RedisServer


@pytest.mark.timeout(90)
def test_beat_stops_sending_while_the_store_is_down_and_recovers(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "kernel.beat")
    server = RedisServer(tmp_path / "redis", persist=True).start()
    name = uuid.uuid4().hex
    app = App("outage", broker=f"memory://{name}", results=None, config={
        "beat_schedule_store": server.url,
        "beat_schedule_store_options": {"retries": 1, "socket_connect_timeout": 0.5},
        "beat_lease_ttl": 1.5, "beat_max_loop_interval": 0.5,
        "beat_schedule": {"tick": {"task": "t", "schedule": 0.5, "options": {"queue": "q"}}}})
    ids: list[str] = []

    def delivered() -> int:
        found = app.transport.fetch(["q"], 100, 0.05)
        app.transport.ack(found)
        ids.extend(d.envelope.headers["id"] for d in found)
        return len(ids)

    try:
        with running_beat(app) as service:
            wait_for(lambda: delivered() >= 2, 20, "beat to send two ticks")
            server.kill()
            wait_for(lambda: any("cannot reach the schedule store" in r.message
                                 for r in caplog.records), 20, "beat to log the outage")
            during = delivered()
            wait_for(lambda: service.token is None, 10, "beat to stop leading")
            assert delivered() - during <= 1, "at most a send in flight when the store went"
            quiet = len(ids)
            server.start()
            wait_for(lambda: delivered() >= quiet + 3, 30, "beat to send again")
    finally:
        app.close()
        server.kill()
    assert any("reaches the schedule store again" in r.message for r in caplog.records)
    outages = [r for r in caplog.records if "cannot reach the schedule store" in r.message]
    assert len(outages) == 1, "the outage is logged once"
    assert len(ids) == len(set(ids)), "no tick was sent twice"
