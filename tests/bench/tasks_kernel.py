"""kernel's benchmark tasks. The worker imports ``app`` (broker from BENCH_KERNEL_URL, results
from BENCH_KERNEL_RESULTS, else the broker's URL); the driver builds its own client apps with
`make_app`."""

from __future__ import annotations

import asyncio
import os

from kernel import App
from tests.bench import env

QUEUE = "bench_kernel"


def make_app(url: str, results: str | None = None, counter: str | None = None,
             **config: object) -> App:
    """Tasks on broker `url`, results on `results` (default: `url`); `counter` is "redis" or
    "results" (default: BENCH_COUNTER, else redis); `config`: more settings."""
    app = App("bench", broker=url, results=results or url,
              config={"task_default_queue": QUEUE, **config})
    on_results = (counter or os.environ.get(env.COUNTER, "redis")) == "results"

    def incr() -> None:
        if on_results:
            # The embedded run has no Redis: the counter is the app's own (SQLite) store.
            app.backend.store.incr(env.COUNTER_KEY)  # type: ignore[union-attr]
        else:
            env.incr()

    @app.task(name="bench.noop", ignore_result=True)
    def noop() -> None:
        incr()

    @app.task(name="bench.ping")
    def ping() -> int:
        incr()
        return 1

    @app.task(name="bench.socket_wait", ignore_result=True)
    def socket_wait() -> None:
        env.wait_on_socket()

    @app.task(name="bench.sleepy", ignore_result=True)
    async def sleepy() -> None:
        await asyncio.sleep(0.05)
        incr()

    return app


app = make_app(os.environ.get(env.KERNEL_URL, "sqlite:///kernel-bench.db"),
               os.environ.get(env.KERNEL_RESULTS))
