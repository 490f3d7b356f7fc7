"""The same three tasks on both sides of a store's Celery interop tests: ``interop.add(x, y)``,
``interop.tsum(values)`` (a chord's body) and ``interop.boom(text)`` (raises KeyError), as a
kernel App (`kernel_tasks`), as the source of a Celery worker's module (`celery_tasks_source`,
for `kernel.testing.workers.celery_workers`), and a Celery client (`celery_client`)::

    with running_worker(kernel_tasks(broker, backend, queue)):
        ...
    worker = celery_worker("ctasks", celery_tasks_source(broker, backend, queue), queue)

Both sides write Celery's extended results (``result_extended``) and retry a chord's unlock
every 0.2 s, so a test waits for a chord no longer than it must.
"""

from __future__ import annotations

import textwrap
from typing import Any

from kernel.app import App

#: what both sides are configured with, besides the broker, backend and queue.
SHARED_CONF: dict[str, Any] = {"result_extended": True, "result_chord_retry_interval": 0.2}

_CELERY_MODULE = """\
{setup}
from celery import Celery
app = Celery("ctasks", broker={broker!r}, backend={backend!r})
app.conf.task_default_queue = {queue!r}
app.conf.worker_hijack_root_logger = False
app.conf.update({conf!r})

@app.task(name="interop.add")
def add(x, y):
    return x + y

@app.task(name="interop.tsum")
def tsum(values):
    return sum(values)

@app.task(name="interop.boom")
def boom(text):
    raise KeyError(text)
"""


def celery_tasks_source(broker: str, backend: str, queue: str, *, setup: str = "",
                        **conf: Any) -> str:
    """A Celery worker's module with the three tasks; `setup` runs first (``django.setup()``),
    `conf` adds to `SHARED_CONF`."""
    return _CELERY_MODULE.format(setup=textwrap.dedent(setup), broker=broker, backend=backend,
                                 queue=queue, conf={**SHARED_CONF, **conf})


def kernel_tasks(broker: str, backend: str, queue: str, **config: Any) -> App:
    """A kernel App with the three tasks; `config` adds to `SHARED_CONF`."""
    app = App("kernel-side", broker=broker, results=backend,
              config={"task_default_queue": queue, **SHARED_CONF, **config})

    @app.task(name="interop.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="interop.tsum")
    def tsum(values: list[int]) -> int:
        return sum(values)

    @app.task(name="interop.boom")
    def boom(text: str) -> None:
        raise KeyError(text)

    return app


def celery_client(broker: str, backend: str, queue: str, **conf: Any) -> Any:
    """A Celery app that sends to `queue` and reads `backend` (Celery is imported here: kernel
    does not depend on it)."""
    import celery

    capp = celery.Celery("celery-side", broker=broker, backend=backend)
    capp.conf.task_default_queue = queue
    capp.conf.result_extended = True
    capp.conf.update(conf)
    return capp


__all__ = ["SHARED_CONF", "celery_client", "celery_tasks_source", "kernel_tasks"]
