"""Task events (std plugin ``middleware``): task-started before a task runs, and after it the
event of its end (succeeded, failed, retried, rejected, revoked), as Celery sends them. Built
only when task events are on or this process listens (`EventDispatcher.wanted`), and sent in
batches by the dispatcher's own thread: no task waits on the broker for them."""

from __future__ import annotations

import signal
from reprlib import Repr

from kernel import states
from kernel.interfaces.middleware import Call, Middleware

#: Celery's ``resultrepr_maxsize``: results and exceptions travel as reprs this long at most.
_REPR = Repr()
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = 1024
_REPR.maxlist = _REPR.maxdict = 64


class SendEvents(Middleware):
    name = "events"

    def before(self, call: Call) -> None:
        events = call.app.events
        if events.wanted:
            events.task("task-started", call.hostname, uuid=call.request.id)

    def after(self, call: Call) -> None:
        events = call.app.events
        if not events.wanted:
            return
        uuid, state, send = call.request.id, call.state, events.task
        if state == states.SUCCESS:
            send("task-succeeded", call.hostname, uuid=uuid, result=_REPR.repr(call.value),
                 runtime=call.runtime)
        elif state in (states.FAILURE, states.RETRY):
            send("task-failed" if state == states.FAILURE else "task-retried", call.hostname,
                 uuid=uuid, exception=_REPR.repr(call.value), traceback=call.traceback or "")
        elif state == states.REJECTED:
            send("task-rejected", call.hostname, uuid=uuid, requeue=False)
        elif state == states.REVOKED:
            why = str(call.value.args[0]) if getattr(call.value, "args", None) else ""
            terminated = why == "terminated"
            send("task-revoked", call.hostname, uuid=uuid, terminated=terminated,
                 signum=int(signal.SIGTERM) if terminated else None, expired=why == "expired")
