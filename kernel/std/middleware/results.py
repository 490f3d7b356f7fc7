"""Storing results (std plugin ``middleware``): STARTED when tracked, then the final record."""

from __future__ import annotations

from typing import Any

from kernel import states
from kernel.errors import ResultRefused
from kernel.interfaces.middleware import Call, Middleware
from kernel.std.middleware.callbacks import children


class StoreResults(Middleware):
    """Writes STARTED (if tracked) and the final record of every ended message, unless its
    result is ignored; a RETRY is recorded by `Task.resend`, before the retry is sent."""

    name = "results"
    critical = True

    @staticmethod
    def _ignored(call: Call) -> bool:
        conf = call.app.conf
        opt = call.options.ignore_result
        return (call.request.ignore_result or bool(opt) or
                (opt is None and conf.task_ignore_result) or conf.result_backend is None)

    def before(self, call: Call) -> None:
        if call.app.conf.task_track_started and not self._ignored(call):
            call.app.backend.store_result(
                call.request.id, states.STARTED, {"pid": call.extra.get("pid"),
                                                  "hostname": call.hostname},
                request=call.request)

    def after(self, call: Call) -> None:
        if call.state in ("", states.IGNORED, states.RETRY) or self._ignored(call):
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
        try:
            call.app.backend.store_result(request.id, call.state, call.value,
                                          traceback=call.traceback, extra=extra,
                                          request=request)
        except ResultRefused as exc:
            # The caller learns why instead of waiting for a result that never comes; the
            # arguments stay out, as they may be what the store could not keep.
            kept = {k: v for k, v in extra.items() if k not in ("args", "kwargs")}
            call.app.backend.store_result(request.id, states.FAILURE, exc, extra=kept,
                                          request=request)
