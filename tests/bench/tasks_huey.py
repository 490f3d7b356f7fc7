"""Huey's benchmark tasks (the same bodies as kernel's), on BENCH_REDIS_URL. notify_result makes
waiting on a result pushed instead of polled (huey's fastest round trip)."""

from __future__ import annotations

import time

from huey import RedisHuey

from tests.bench import env

huey = RedisHuey("bench_huey", url=env.redis_url(), notify_result=True)


@huey.task()
def noop() -> None:
    env.incr()


@huey.task()
def ping() -> int:
    env.incr()
    return 1


@huey.task()
def sleepy() -> None:
    time.sleep(0.05)
    env.incr()
