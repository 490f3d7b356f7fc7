"""Running one task message: decode, run, and let middleware store results and send callbacks.

`Executor` is the pool's runner. It runs in the pool's process or thread (a prefork child
re-imports the App by its import spec), and returns a `Verdict` telling the consumer what to do
with the message. It never raises: a task's exception is the task's result.

Every message ends through the same middleware after-hooks: one that runs, one refused here
(unknown task, undecodable body: REJECTED) or expired (REVOKED), and, through `Executor.end` in
the worker's own process, one that ended without its runner finishing it (revoked before it
started, killed at its hard time limit, terminated, its process lost, over its delivery cap).
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
from kernel.interfaces.middleware import Call
from kernel.interfaces.pool import Job
from kernel.message import Request, current_request, parse_body
from kernel.options import TaskOptions
from kernel.worker.pipeline import Pipeline, Unfinished

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
    #: the delivery's tag and count: how a prefork worker's process settles the message of a
    #: consumer child that died running it.
    tag: Any = None
    delivery_count: int = 1


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
            self._pipeline = Pipeline.of(self.app.plugins.middleware.values(), self.app.conf)
        return self._pipeline

    # ------------------------------------------------------------------ sync path

    def __call__(self, job: Job) -> Verdict:
        call = self._start(job.payload)
        if not call.state and call.task is not None:
            with _running(call):
                call.value = call.task.run(call.args, call.kwargs)
        return self._finish(call)

    # ------------------------------------------------------------------ async path

    async def arun(self, job: Job) -> Verdict:
        """For event-loop pools: awaits an ``async def`` task on the pool's loop."""
        call = self._start(job.payload)
        task = call.task
        if not call.state and task is not None:
            with _running(call):
                args = [task, *call.args] if task.options.bind else call.args
                call.value = await task.fn(*args, **call.kwargs)
        import asyncio

        return await asyncio.to_thread(self._finish, call)

    # ------------------------------------------------------------------ shared

    def _start(self, payload: Payload) -> Call:
        """Decode and check the message, then run the before-hooks. A message that will not
        run (rejected, expired) gets its final state instead, and only the after-hooks; so
        may one whose before-hook set a final state."""
        call, problem = self._call(payload)
        request = call.request
        if problem is not None:
            log.error("rejected task %s[%s]: %s", request.name, request.id, problem)
            # As MessageError: what every reader can rebuild, whatever the reason's class.
            call.state, call.value = states.REJECTED, MessageError(str(problem))
        elif request.expires is not None and time.time() > request.expires:
            log.info("task %s[%s] expired before it ran; not running it", request.name,
                     request.id)
            call.state, call.value = states.REVOKED, TaskRevokedError("expired")
        else:
            self.pipeline.before(call)
        return call

    def _call(self, payload: Payload) -> tuple[Call, MessageError | None]:
        """The `Call` for a message, and why it cannot run (None if it can). A body that does
        not decode leaves args, kwargs and embed empty."""
        request = payload.request
        task = self.app.tasks.get(request.name)
        problem: MessageError | None = None
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        embed: dict[str, Any] = {}
        try:
            decoded = self.app.codec.decode(payload.body, payload.content_type,
                                            payload.compression)
            args, kwargs, embed = parse_body(decoded)
        except MessageError as exc:
            problem = exc
        if task is None and problem is None:
            problem = UnknownTask(request.name, self.app.tasks)
        request.args, request.kwargs, request.embed, request.queue = (
            args, kwargs, embed, payload.queue)
        call = Call(self.app, request, task, task.options if task else TaskOptions(), args,
                    kwargs, embed, self.hostname, payload.queue, extra={"pid": os.getpid()})
        return call, problem

    def _after(self, call: Call) -> Unfinished | None:
        """The after-hooks; what could not finish, if anything (logged)."""
        try:
            self.pipeline.after(call)
        except Unfinished as unfinished:
            log.error("task %s[%s] ended %s but %s", call.request.name, call.request.id,
                      call.state, unfinished)
            return unfinished
        return None

    def _finish(self, call: Call) -> Verdict:
        if (unfinished := self._after(call)) is not None:
            return Verdict(REQUEUE, call.state, str(unfinished))
        if call.state == states.FAILURE:
            call.value.__traceback__ = None  # break the frame cycle early
        if call.state == states.REJECTED:
            return Verdict(REJECT, states.REJECTED, str(call.value))
        return Verdict(ACK, call.state)

    def end(self, payload: Payload, state: str, exc: Exception) -> bool:
        """A message that ended without its runner finishing it: the after-hooks, here, with
        `state` and `exc` as its outcome (its result, its chord, its callbacks, its claim).
        False when a critical one could not finish: the message must not be acked."""
        call, _ = self._call(payload)
        call.state, call.value = state, exc
        return self._after(call) is None

    def stop(self) -> None:
        """The worker stops: retries of after-hooks end, their messages go back unacked."""
        self.pipeline.stopping.set()


@contextmanager
def _running(call: Call) -> Iterator[None]:
    """Around the task body: the current request for nested sends, the run time, and the
    task's exception turned into its FAILURE result. The body sets `call.value`."""
    token = current_request.set(call.request)
    started = time.perf_counter()
    call.ran = True
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

