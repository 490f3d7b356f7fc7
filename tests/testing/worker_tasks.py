"""Tasks for test_workers.py, run by real worker processes; broker and results come from the
environment the helper sets (KERNEL_BROKER_URL, KERNEL_RESULT_BACKEND)."""

from __future__ import annotations

from kernel import App

app = App("testing-workers")


@app.task(name="kit.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="kit.fail")
def fail() -> None:
    raise ZeroDivisionError("failing on purpose")
