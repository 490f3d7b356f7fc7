"""The kernel's own per-task features, registered like any plugin's (std plugin ``middleware``):
storing results, and sending callbacks, errbacks and the next step of a chain."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from kernel import states, unique
from kernel.canvas import Signature
from kernel.chords import children, send_errbacks
from kernel.hookspecs import hookimpl
from kernel.specs import MiddlewareSpec
from kernel.worker.middleware import Call, Middleware

log = logging.getLogger("kernel.worker")


class StoreResults(Middleware):
    """Writes STARTED (if tracked) and the final record, unless the result is ignored."""

    name = "results"

    @staticmethod
    def _ignored(call: Call) -> bool:
        conf = call.app.conf
        opt = call.task.options.ignore_result
        return (call.request.ignore_result or bool(opt) or
                (opt is None and conf.task_ignore_result) or conf.result_backend is None)

    def before(self, call: Call) -> None:
        if call.app.conf.task_track_started and not self._ignored(call):
            call.app.backend.store_result(
                call.request.id, states.STARTED, {"pid": call.extra.get("pid"),
                                                  "hostname": call.hostname},
                request=call.request)

    def after(self, call: Call) -> None:
        if self._ignored(call) or call.state in ("", states.IGNORED):
            return
        request = call.request
        extra: dict[str, Any] = {}
        if request.group_id:
            extra["group_id"] = request.group_id
        if request.parent_id:
            extra["parent_id"] = request.parent_id
        extra["children"] = children(call)
        if call.app.conf.result_extended:
            extra.update(name=request.name, args=call.args, kwargs=call.kwargs,
                         worker=call.hostname, retries=request.retries, queue=call.queue)
        backend = call.app.backend
        if call.state == states.RETRY:
            return  # recorded by Task.resend before the retry was sent
        backend.store_result(request.id, call.state, call.value, traceback=call.traceback,
                             extra=extra, request=request)


class SendCallbacks(Middleware):
    """After success: link callbacks and the next chain step get the return value; after a
    failure: errbacks get the failed task's id (Celery's publish form)."""

    name = "callbacks"

    def after(self, call: Call) -> None:
        request, embed = call.request, call.embed
        # The caller's reply_to goes along, so a chain's last result reaches it (rpc).
        lineage: dict[str, Any] = {"parent_id": request.id,
                                   "root_id": request.root_id or request.id,
                                   "reply_to": request.properties.get("reply_to")}
        if call.state == states.SUCCESS:
            for sig in embed.get("callbacks") or ():
                Signature.from_dict(sig, call.app).apply_async((call.value,), **lineage)
            chain = embed.get("chain") or []
            if chain:
                step = Signature.from_dict(chain[-1], call.app)
                step.apply_async((call.value,), chain=chain[:-1] or None, **lineage)
        elif call.state == states.FAILURE:
            send_errbacks(call.app, embed.get("errbacks"), request.id, request.root_id)


class AutoRetry(Middleware):
    """Retries a task whose exception is one of its ``autoretry_for`` types, with its backoff
    and jitter, up to ``max_retries``; past that the failure stands."""

    name = "autoretry"

    def after(self, call: Call) -> None:
        kinds = call.task.options.autoretry_for
        if call.state != states.FAILURE or not kinds or not isinstance(call.value, kinds):
            return
        try:
            retry = call.task.resend(call.request, call.value)
        except Exception as final:  # noqa: BLE001 - max retries reached: this is the failure
            if final is not call.value:
                call.value, call.traceback = final, None
            return
        call.state = states.RETRY
        log.info("task %s[%s] will be retried: %s", call.request.name, call.request.id, retry)


class ReleaseUnique(Middleware):
    """Frees a unique task's claim once it ended (not when it will be retried)."""

    name = "unique"

    def after(self, call: Call) -> None:
        key = call.request.headers.get(unique.HEADER)
        if key and call.state != states.RETRY:
            unique.release(call.app, key)


_OUTCOME_SIGNALS = {states.SUCCESS: "kernel_task_success", states.FAILURE: "kernel_task_failure",
                    states.RETRY: "kernel_task_retry"}


class SendSignals(Middleware):
    """The task-side signals: prerun before; success/failure/retry/revoked, then postrun."""

    name = "signals"

    def before(self, call: Call) -> None:
        call.app.signals.send("kernel_task_prerun", call=call)

    def after(self, call: Call) -> None:
        signals = call.app.signals
        outcome = _OUTCOME_SIGNALS.get(call.state)
        if outcome is not None:
            signals.send(outcome, call=call)
        elif call.state == states.REVOKED:
            signals.send("kernel_task_revoked", request=call.request,
                         reason=str(call.value.args[0]) if call.value.args else "revoked")
        signals.send("kernel_task_postrun", call=call)


@hookimpl
def kernel_middleware() -> Iterable[MiddlewareSpec]:
    # After-hooks run in reverse order: autoretry first (it may turn a FAILURE into RETRY),
    # then a unique claim is freed (before the result shows, so a client that saw the result
    # may send the task again at once), then results are stored, then callbacks are sent (so
    # their workers can read the result).
    yield MiddlewareSpec("signals", SendSignals, order=0)
    yield MiddlewareSpec("callbacks", SendCallbacks, order=800)
    yield MiddlewareSpec("unique", ReleaseUnique, order=925)
    yield MiddlewareSpec("results", StoreResults, order=900)
    yield MiddlewareSpec("autoretry", AutoRetry, order=950)
