"""The task module of the prefork test (`test_worker.py`): an app that requires signatures,
trusting the store ``KERNEL_SIGNING_TEST_STORE`` names; broker and results from the worker's
environment."""

from __future__ import annotations

import os

from kernel import App

app = App("signed", config={"task_default_queue": "q",
                            "security_cert_store": os.environ["KERNEL_SIGNING_TEST_STORE"]})
app.setup_security()


@app.task(name="add")
def add(x: int, y: int) -> int:
    return x + y
