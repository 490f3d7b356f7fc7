"""Running one task message: decode, run, and let middleware store results and send callbacks.

`Executor` is the pool's runner. It runs in the pool's process or thread (a prefork child
re-imports the App by its import spec), and returns a `Verdict` telling the consumer what to do
with the message. It never raises: a task's exception is the task's result.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
import os
import sys
import time
import traceback as tb_module
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kernel import states
from kernel.errors import Ignore, MessageError, Retry, TaskRevokedError, UnknownTask
from kernel.interfaces.pool import Job
from kernel.message import Request, current_request, parse_body
from kernel.worker.middleware import Call, Pipeline

if TYPE_CHECKING:
    from kernel.app import App

log = logging.getLogger("kernel.worker")

ACK, REQUEUE, REJECT = "ack", "requeue", "reject"


@dataclass(frozen=True)
class Verdict:
    """What to do with the message once the runner is done."""

    action: str  # ack | requeue | reject
    state: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Payload:
    """What the consumer sends the runner for one message (kept small: it crosses a pipe)."""

    request: Request
    body: bytes
    content_type: str
    compression: str | None
    queue: str


class Executor:
    """The runner the worker gives its pool."""

    def __init__(self, app: App, hostname: str) -> None:
        self.app = app
        self.hostname = hostname
        self._pipeline: Pipeline | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        return (Executor, (self.app, self.hostname))

    @property
    def pipeline(self) -> Pipeline:
        # Built lazily, in the process that runs tasks.
        if self._pipeline is None:
            specs = sorted(self.app.plugins.registry("middleware").values(),
                           key=lambda s: (s.order, s.name))
            self._pipeline = Pipeline([spec.factory() for spec in specs])
        return self._pipeline

    # ------------------------------------------------------------------ sync path

    def __call__(self, job: Job) -> Verdict:
        call = self._start(job.payload)
        if isinstance(call, Verdict):
            return call
        if not call.state:
            with _running(call):
                call.value = call.task.run(call.args, call.kwargs)
        return self._finish(call)

    # ------------------------------------------------------------------ async path

    async def arun(self, job: Job) -> Verdict:
        """For event-loop pools: awaits an ``async def`` task on the pool's loop."""
        call = self._start(job.payload)
        if isinstance(call, Verdict):
            return call
        if not call.state:
            with _running(call):
                args = [call.task, *call.args] if call.task.options.bind else call.args
                call.value = await call.task.fn(*args, **call.kwargs)
        import asyncio

        return await asyncio.to_thread(self._finish, call)

    # ------------------------------------------------------------------ shared

    def _start(self, payload: Payload) -> Call | Verdict:
        """Decode and check the message, then run the before-hooks (not for a task that will
        not run, such as an expired one; a before-hook may itself set a final state)."""
        call = self._prepare(payload)
        if isinstance(call, Call) and not call.state:
            self.pipeline.before(call)
        return call

    def _prepare(self, payload: Payload) -> Call | Verdict:
        request = payload.request
        task = self.app.tasks.get(request.name)
        if task is None:
            return _rejected(request, UnknownTask(request.name, self.app.tasks))
        try:
            decoded = self.app.codec.decode(payload.body, payload.content_type,
                                            payload.compression)
            args, kwargs, embed = parse_body(decoded)
        except MessageError as exc:
            return _rejected(request, exc)
        request.args, request.kwargs, request.embed, request.queue = (
            args, kwargs, embed, payload.queue)
        call = Call(self.app, request, task, args, kwargs, embed, self.hostname, payload.queue,
                    extra={"pid": os.getpid()})
        if request.expires is not None and time.time() > request.expires:
            call.state = states.REVOKED
            call.value = TaskRevokedError("expired")
            log.info("task %s[%s] expired before it ran; not running it", request.name,
                     request.id)
        return call

    def _finish(self, call: Call) -> Verdict:
        self.pipeline.after(call)
        if call.state == states.FAILURE:
            call.value.__traceback__ = None  # break the frame cycle early
        return Verdict(ACK, call.state)


@contextmanager
def _running(call: Call) -> Iterator[None]:
    """Around the task body: the current request for nested sends, the run time, and the
    task's exception turned into its FAILURE result. The body sets `call.value`."""
    token = current_request.set(call.request)
    started = time.perf_counter()
    try:
        yield
        call.state = states.SUCCESS
    except Retry as retry:
        call.state, call.value = states.RETRY, retry.exc if retry.exc is not None else retry
        log.info("task %s[%s] will be retried: %s", call.request.name, call.request.id, retry)
    except Ignore:
        call.state = states.IGNORED
    except Exception as exc:  # noqa: BLE001 - the task's failure is its result
        call.state, call.value = states.FAILURE, exc
        call.traceback = "".join(tb_module.format_exception(*sys.exc_info()))
        log.warning("task %s[%s] raised %s: %s", call.request.name, call.request.id,
                    type(exc).__name__, exc)
    finally:
        call.runtime = time.perf_counter() - started
        current_request.reset(token)


def _rejected(request: Request, exc: Exception) -> Verdict:
    reason = str(exc)
    log.error("rejected task %s[%s]: %s", request.name, request.id, reason)
    return Verdict(REJECT, states.REJECTED, reason)
