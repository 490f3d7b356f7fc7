"""Runners for the pool tests that the suite's `SuiteRunner` does not cover (importable by
prefork children)."""

from __future__ import annotations

from typing import Any

from kernel.interfaces.pool import Job
from kernel.testing.pool_runners import SuiteRunner


def sync_only(job: Job) -> Any:
    """The suite's commands without ``arun``: async jobs must then run as sync calls."""
    return SuiteRunner()(job)


def _refuse_to_load() -> None:
    raise ImportError("this runner cannot be loaded in a child (on purpose)")


class Unloadable:
    """Pickles fine in the parent; unpickling it in a child raises ImportError."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_refuse_to_load, ())

    def __call__(self, job: Job) -> Any:
        return None
