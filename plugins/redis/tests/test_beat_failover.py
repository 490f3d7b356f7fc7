"""Three beat processes on Redis (broker and schedule store, a key prefix of their own), the
leader killed with SIGKILL three times: every tick counted, none twice, none lost but what a
kill between claim and send may lose, a new leader within seconds."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import redis

from kernel.testing.beat import failover_run


@pytest.mark.timeout(90)
def test_three_beats_on_redis_survive_leader_kills(tmp_path: Path, redis_url: str,
                                                   raw_redis: redis.Redis) -> None:
    prefix = f"beat-failover-{uuid.uuid4().hex}"
    try:
        report = failover_run(tmp_path, broker=redis_url, store=redis_url,
                              store_options={"schedule_key": prefix}, kills=3)
    finally:
        for key in raw_redis.scan_iter(f"{prefix}:*"):
            raw_redis.delete(key)
    print(report.summary())
    report.check()
