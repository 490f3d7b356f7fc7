"""The worker: ``Worker(app, pool=..., concurrency=...).run()``."""

from kernel.worker.blueprint import Blueprint
from kernel.worker.middleware import Call, Middleware
from kernel.worker.worker import Worker

__all__ = ["Blueprint", "Call", "Middleware", "Worker"]
