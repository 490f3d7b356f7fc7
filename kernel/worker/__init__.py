"""The worker: ``Worker(app, pool=..., concurrency=...).run()``."""

from kernel.worker.blueprint import Blueprint
from kernel.worker.worker import Worker

__all__ = ["Blueprint", "Worker"]
