"""Automatic retries (std plugin ``middleware``): a task whose exception is one of its
``autoretry_for`` types is retried with its backoff and jitter, up to ``max_retries``; past
that the failure stands."""

from __future__ import annotations

import logging

from kernel import states
from kernel.interfaces.middleware import Call, Middleware

log = logging.getLogger("kernel.worker")


class AutoRetry(Middleware):
    name = "autoretry"
    critical = True

    def after(self, call: Call) -> None:
        # Only a body that ran and raised: a task killed at its hard time limit or lost with
        # its process is not retried here (its message goes back to the broker or fails).
        kinds = call.options.autoretry_for
        if (not call.ran or call.task is None or call.state != states.FAILURE or not kinds
                or not isinstance(call.value, kinds)):
            return
        try:
            retry = call.task.resend(call.request, call.value)
        except Exception as final:  # noqa: BLE001 - max retries reached: this is the failure
            if final is not call.value:
                call.value, call.traceback = final, None
            return
        call.state = states.RETRY
        log.info("task %s[%s] will be retried: %s", call.request.name, call.request.id, retry)
