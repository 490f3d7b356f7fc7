"""A chord of 1,000 header tasks on Redis, run by two real ``kernel worker`` processes: the body
is called once, with every header result in order, and every task runs once."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from kernel import Signature, chord
from kernel.testing.workers import Workers

TESTS = Path(__file__).parent


@pytest.mark.timeout(240)
def test_a_chord_of_a_thousand_on_two_workers(redis_url: str, tmp_path: Path) -> None:
    raw = redis.Redis.from_url(redis_url)
    with Workers("canvas_tasks:app", broker=redis_url, results=redis_url, path=TESTS,
                 logs=tmp_path) as workers:
        keys = f"{workers.queue}:book"
        try:
            started = [workers.start("threads", 4, loglevel="info",
                                     env={"E2E_QUEUE": workers.queue, "E2E_KEYS": keys})
                       for _ in range(2)]
            for worker in started:  # both consume before the chord is sent, so both take part
                worker.wait_ready()
            client = workers.client
            header = [Signature("canvas.add", (i, i), app=client) for i in range(1000)]
            result = chord(header, Signature("canvas.tsum", app=client)).apply_async()
            assert result.get(timeout=180) == sum(2 * i for i in range(1000)), workers.describe()
            runs = {k.decode(): int(v) for k, v in raw.hgetall(f"{keys}:runs").items()}
            assert len(runs) == 1001 and set(runs.values()) == {1}, "every task ran exactly once"
            assert runs[result.id] == 1, "the body ran once"
            assert raw.scard(f"{keys}:pids") == 2, f"both workers took part; {workers.describe()}"
            assert not raw.exists(f"celery-taskset-meta-{result.parent.id}.j"), (  # type: ignore[union-attr]
                "the chord's counter keys are gone once the body was sent")
        finally:
            raw.delete(f"{keys}:runs", f"{keys}:pids")
            raw.close()
