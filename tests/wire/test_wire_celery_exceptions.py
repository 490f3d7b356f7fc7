"""Errors both projects have travel under Celery's module names, and come back as kernel's."""

from __future__ import annotations

import pytest

from kernel import TaskRevokedError, TimeLimitExceeded, WorkerLostError
from kernel.records import exception_from_dict, exception_to_dict


@pytest.mark.parametrize(("exc", "module"), [
    (TaskRevokedError("expired"), "celery.exceptions"),
    (TimeLimitExceeded("too long"), "celery.exceptions"),
    (WorkerLostError("pid 1 died"), "billiard.exceptions"),
])
def test_shared_errors_use_celery_module_names_and_round_trip(exc: Exception,
                                                              module: str) -> None:
    record = exception_to_dict(exc)
    assert record["exc_module"] == module
    back = exception_from_dict(record)
    assert type(back) is type(exc) and back.args == exc.args


def test_a_celery_revoked_record_raises_kernels_revoked_error() -> None:
    record = {"exc_type": "TaskRevokedError", "exc_message": ["revoked"],
              "exc_module": "celery.exceptions"}
    assert isinstance(exception_from_dict(record), TaskRevokedError)
