"""The demo's tasks: a sync add, an async add and one that fails on purpose.

The worker the demo starts imports this module with ``-A kernel.demo.tasks:app``; the broker and
the result store come from KERNEL_BROKER_URL / KERNEL_RESULT_BACKEND, which the demo sets.
"""

from __future__ import annotations

import asyncio

from kernel import App

app = App("kernel.demo")


class DemoFailure(Exception):
    """Raised on purpose by `fail`, to show how a task's error comes back to the caller."""


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task
async def add_async(x: int, y: int) -> int:
    await asyncio.sleep(0)  # a real suspension point: the task runs on an event loop
    return x + y


@app.task
def fail(n: int) -> None:
    raise DemoFailure(f"task {n} fails on purpose")
