"""Unique tasks (std plugin ``middleware``): the claim is freed once the task ended, however it
ended, but not when it will be retried (the retry keeps it)."""

from __future__ import annotations

from kernel import states, unique
from kernel.interfaces.middleware import Call, Middleware


class ReleaseUnique(Middleware):
    name = "unique"
    critical = True

    def after(self, call: Call) -> None:
        key = call.request.headers.get(unique.HEADER)
        if key and call.state != states.RETRY:
            unique.release(call.app, key)
