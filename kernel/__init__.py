"""kernel: a distributed task queue built as a plugin microkernel, speaking Celery's protocol v2.

The public API is what this module exports; everything else is private and may change.
"""

from kernel import states
from kernel.app import App
from kernel.canvas import (
    Signature,
    chain,
    chord,
    chunks,
    group,
    maybe_signature,
    signature,
    xmap,
    xstarmap,
)
from kernel.config import Config
from kernel.errors import (
    ChordError,
    ConfigurationError,
    KernelError,
    MaxRetriesExceededError,
    PublishError,
    RemoteError,
    Retry,
    SoftTimeLimitExceeded,
    TaskRevokedError,
    TimeLimitExceeded,
    TimeoutError,
    WorkerLostError,
)
from kernel.hookspecs import hookimpl
from kernel.result import AsyncResult, EagerResult, GroupResult
from kernel.schedules import clocked, crontab, schedule, solar
from kernel.shared import shared_task
from kernel.task import Task

#: Celery's name for the App, so a project's ``from celery import Celery`` becomes
#: ``from kernel import Celery`` and nothing else changes.
Celery = App

__version__ = "0.1.0"

__all__ = [
    "App",
    "AsyncResult",
    "Celery",
    "ChordError",
    "Config",
    "ConfigurationError",
    "EagerResult",
    "GroupResult",
    "KernelError",
    "MaxRetriesExceededError",
    "PublishError",
    "RemoteError",
    "Retry",
    "Signature",
    "SoftTimeLimitExceeded",
    "Task",
    "TaskRevokedError",
    "TimeLimitExceeded",
    "TimeoutError",
    "WorkerLostError",
    "chain",
    "chord",
    "chunks",
    "clocked",
    "crontab",
    "group",
    "hookimpl",
    "maybe_signature",
    "schedule",
    "shared_task",
    "signature",
    "solar",
    "states",
    "xmap",
    "xstarmap",
]
