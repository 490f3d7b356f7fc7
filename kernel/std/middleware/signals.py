"""Task signals (std plugin ``middleware``): prerun before a task runs; after it, success,
failure, retry or revoked, then postrun for a task that ran."""

from __future__ import annotations

from kernel import states
from kernel.interfaces.middleware import Call, Middleware

_OUTCOME_SIGNALS = {states.SUCCESS: "kernel_task_success", states.FAILURE: "kernel_task_failure",
                    states.RETRY: "kernel_task_retry"}


class SendSignals(Middleware):
    name = "signals"

    def before(self, call: Call) -> None:
        call.app.signals.send("kernel_task_prerun", call=call)

    def after(self, call: Call) -> None:
        signals = call.app.signals
        outcome = _OUTCOME_SIGNALS.get(call.state)
        if outcome is not None:
            signals.send(outcome, call=call)
        elif call.state == states.REVOKED:
            reason = call.value.args[0] if getattr(call.value, "args", None) else "revoked"
            signals.send("kernel_task_revoked", request=call.request, reason=str(reason))
        if call.ran:
            signals.send("kernel_task_postrun", call=call)
