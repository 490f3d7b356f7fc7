"""Sending tasks: the one typed definition of the send options, the envelope every send builds,
and publishing, one call at a time or pipelined.

Pipelined publishing (``with app.pipelined(): ...``) lets `delay` return before the broker has
answered, while one background thread sends what the caller queues, in order, as batches.
Its guarantees (see docs/user-guide/tasks.md, "Publishing many tasks fast"):

* Every task sent inside the block is published, in call order, or the block raises
  `PublishError` naming the tasks that were not; leaving the block waits for the broker's answer
  to every one of them. Outside a block nothing changes: `delay` returns once the broker has it.
* After the first failed batch nothing more is sent: later sends in the block raise at once,
  and the error lists every task that was queued but not published (including the failed batch,
  which the broker may or may not have taken: the transport's own retries never duplicate it).
* The caller waits only when `MAX_QUEUED` messages are already waiting (memory stays bounded).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kernel import unique
from kernel.config import first_set
from kernel.errors import PublishError
from kernel.interfaces.transport import Outgoing, Transport
from kernel.message import absolute_time, build_task, current_request, new_id
from kernel.result import AsyncResult
from kernel.options import SendOptions, TaskOptions, check_send_options
from kernel.routing import Routes

if TYPE_CHECKING:
    from kernel.app import App
    from kernel.task import Task


#: messages queued for the background sender before a caller waits for room.
MAX_QUEUED = 10_000
#: the most messages one broker call carries.
MAX_BATCH = 1_000

Send = Callable[[list[Outgoing], list[str]], None]
Call = tuple[Any, Sequence[Any], dict[str, Any]] | tuple[Any, Sequence[Any], dict[str, Any],
                                                         SendOptions]


class Producer:
    """An App's sending side: builds task messages and publishes them."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._routes: Routes | None = None
        #: the transport `task_queues` was declared on (a new one declares again).
        self._declared_on: Transport | None = None

    def routes(self) -> Routes:
        """The routing of the current settings, compiled again when they change."""
        conf = self.app.conf
        routes = self._routes
        if routes is None or not routes.current(conf):
            self._routes = routes = Routes(conf)
        return routes

    def declare(self, transport: Transport) -> None:
        """Declare ``task_queues``' exchanges and bindings on `transport`, once."""
        if self._declared_on is not transport:
            bindings = self.routes().bindings
            if bindings:
                transport.declare_bindings(bindings)
            self._declared_on = transport

    # ------------------------------------------------------------------ sending

    def send(self, name: str, args: Sequence[Any] | None, kwargs: dict[str, Any] | None,
             options: SendOptions, task: Task[Any, Any] | None = None) -> AsyncResult[Any]:
        """Send one task (see `kernel.task.Task.apply_async`); unique tasks claim first."""
        task = task or self.app.tasks.get(name)
        claim_key = None
        if task is not None and not options.get("retries"):
            claim_key = unique.key_for(task, args or (), kwargs or {})
        if claim_key is not None:
            assert task is not None
            options = {**options, "task_id": options.get("task_id") or new_id()}
            ttl = task.options.unique_for or unique.DEFAULT_FOR
            holder = unique.claim(self.app, claim_key, str(options["task_id"]), ttl)
            if holder is not None:
                return AsyncResult(holder, self.app)
            options["headers"] = {**(options.get("headers") or {}), unique.HEADER: claim_key}
        outgoing, task_id, ignored = self.envelope(name, args, kwargs, options, task)
        try:
            self.publish([outgoing], [] if ignored or options.get("retries") else [task_id],
                         wait=claim_key is not None)
        except BaseException:
            if claim_key is not None:
                unique.release(self.app, claim_key)
            raise
        return AsyncResult(task_id, self.app, ignored=ignored)

    def send_many(self, calls: Iterable[Call], options: SendOptions) -> list[AsyncResult[Any]]:
        """Send many tasks in one broker round trip: ``(task_or_name, args, kwargs)`` or with a
        fourth element, the options of that call alone, over `options`."""
        batch: list[Outgoing] = []
        results: list[AsyncResult[Any]] = []
        tracked: list[str] = []
        for call in calls:
            target, args, kwargs = call[0], call[1], call[2]
            own: SendOptions = {**options, **(call[3] if len(call) > 3 else {})}
            task = target if not isinstance(target, str) else self.app.tasks.get(target)
            name = target if isinstance(target, str) else target.name
            if task is not None and unique.key_for(task, args, kwargs) is not None:
                # a unique task claims before it is sent: one at a time
                results.append(self.send(name, list(args), kwargs, own, task))
                continue
            outgoing, task_id, ignored = self.envelope(name, args, kwargs, own, task)
            batch.append(outgoing)
            results.append(AsyncResult(task_id, self.app, ignored=ignored))
            if not ignored:
                tracked.append(task_id)
        if batch:
            self.publish(batch, tracked)
        return results

    def envelope(self, name: str, args: Sequence[Any] | None, kwargs: dict[str, Any] | None,
                 options: SendOptions, task: Task[Any, Any] | None
                 ) -> tuple[Outgoing, str, bool]:
        """The message for one call, where it goes, its id, and whether its result is
        ignored. Each option comes from the call, else the task, else the app's settings."""
        check_send_options(options)
        app, conf = self.app, self.app.conf
        task = task or app.tasks.get(name)
        topts = task.options if task is not None else TaskOptions()
        now = time.time()
        eta_ts = absolute_time(now, options.get("countdown"), options.get("eta"))
        expires = options.get("expires")
        exp_ts = absolute_time(now, expires if not isinstance(expires, datetime) else None,
                               expires if isinstance(expires, datetime) else None)
        task_id = options.get("task_id") or new_id()
        parent = current_request.get()
        embed = {
            "callbacks": _as_list(options.get("link")),
            "errbacks": _as_list(options.get("link_error")),
            "chain": options.get("chain"),
            "chord": options.get("chord"),
        }
        args_list = list(args or ())
        kwargs_dict = dict(kwargs or {})
        body, ctype, cenc, cmime = app.codec.encode(
            [args_list, kwargs_dict, embed],
            options.get("serializer") or topts.serializer or conf.task_serializer,
            options.get("compression") or topts.compression or conf.task_compression,
        )
        ignore = first_set(options.get("ignore_result"), topts.ignore_result,
                           conf.task_ignore_result) or conf.result_backend is None
        route = self.routes().route(name, args_list, kwargs_dict, options, topts.queue,
                                    topts.priority)
        prio = first_set(route.priority, conf.task_default_priority)
        envelope = build_task(
            name=name, task_id=task_id, args=args_list, kwargs=kwargs_dict, body=body,
            content_type=ctype, content_encoding=cenc, compression=cmime, now=now,
            eta=eta_ts, expires=exp_ts, retries=options.get("retries") or 0,
            time_limit=first_set(options.get("time_limit"), topts.time_limit,
                                 conf.task_time_limit),
            soft_time_limit=first_set(options.get("soft_time_limit"), topts.soft_time_limit,
                                      conf.task_soft_time_limit),
            root_id=options.get("root_id") or (parent.root_id if parent else None),
            parent_id=options.get("parent_id") or (parent.id if parent else None),
            group_id=options.get("group_id"), group_index=options.get("group_index"),
            shadow=options.get("shadow"), ignore_result=bool(ignore), priority=prio,
            reply_to=options.get("reply_to") or (None if ignore else
                                                 app.backend.reply_address()),
            headers=options.get("headers"),
        )
        if parent is not None:
            parent.children.append([[task_id, None], None])
        outgoing = Outgoing(route.queue, envelope, priority=prio,
                            not_before=eta_ts if eta_ts and eta_ts > now else None,
                            exchange=route.exchange, routing_key=route.routing_key)
        return outgoing, task_id, bool(ignore)

    # ------------------------------------------------------------------ publishing

    def publish(self, batch: list[Outgoing], tracked: list[str], wait: bool = False) -> None:
        """Publish `batch` (`tracked`: the ids that get a PENDING record), through the
        pipeline of the ``pipelined()`` block this runs in, unless `wait`."""
        signals = self.app.signals
        if signals.wanted("kernel_before_publish"):
            for out in batch:
                signals.send("kernel_before_publish", app=self.app, envelope=out.envelope,
                             queue=out.queue)
        pipeline = current(self.app)
        if pipeline is not None and wait:
            pipeline.wait_sent()
        if pipeline is None or wait or not pipeline.put(batch, tracked):
            self.publish_now(batch, tracked)

    def publish_now(self, batch: list[Outgoing], tracked: list[str]) -> None:
        app = self.app
        if tracked and app.conf.task_track_sent:
            # Before publishing: written after, it could land on top of a finished result.
            app.backend.store_sent(tracked)
        transport = app.transport
        self.declare(transport)
        transport.publish(batch)
        if app.conf.task_send_sent_event:
            app.events.sent(batch)
        signals = app.signals
        if signals.wanted("kernel_after_publish"):
            for out in batch:
                signals.send("kernel_after_publish", app=app, envelope=out.envelope,
                             queue=out.queue)

    @contextmanager
    def pipelined(self) -> Iterator[None]:
        if current(self.app) is not None:  # nested: the outer block waits for everything
            yield
            return
        pipeline = Pipeline(self.publish_now)
        token = _current.set((self.app, pipeline))
        try:
            yield
        except BaseException:
            _current.reset(token)
            pipeline.close()  # publish what was sent before the error, then let it through
            raise
        _current.reset(token)
        pipeline.close()


def _as_list(value: Any) -> list[Any] | None:
    if value is None:
        return None
    return list(value) if isinstance(value, (list, tuple)) else [value]


# ------------------------------------------------------------------------------ pipelining


class Pipeline:
    """One ``app.pipelined()`` block: a queue of outgoing messages and the thread sending it."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._more = threading.Condition(self._lock)  # the sender waits for messages
        self._room = threading.Condition(self._lock)  # callers wait for room / the end
        self._queued: list[tuple[Outgoing, bool]] = []
        self._busy = False
        self._closing = False
        self._error: BaseException | None = None
        self._unsent: list[str] = []
        self._thread = threading.Thread(target=self._run, name="kernel-publisher", daemon=True)
        self._thread.start()

    def put(self, batch: list[Outgoing], tracked: list[str]) -> bool:
        """Queue `batch` (`tracked`: the ids that get a PENDING record); raises `PublishError`
        once an earlier batch has failed. False if the block has ended (a coroutine started in
        it may outlive it): the caller then publishes itself."""
        wanted = set(tracked)
        with self._lock:
            if self._closing:
                return False
            while len(self._queued) >= MAX_QUEUED and self._error is None:
                self._room.wait()
            if self._error is not None:
                self._unsent += [task_id(out) for out in batch]
                raise self._failure()
            self._queued += [(out, task_id(out) in wanted) for out in batch]
            if not self._busy:
                self._more.notify()
        return True

    def wait_sent(self) -> None:
        """Wait until everything queued so far is published (a caller that must publish
        synchronously keeps the order this way); `PublishError` if some was not."""
        with self._lock:
            while (self._queued or self._busy) and self._error is None:
                self._room.wait()
            if self._error is not None:
                raise self._failure()

    def close(self) -> None:
        """Wait until everything queued is published; `PublishError` if some was not."""
        with self._lock:
            self._closing = True
            self._more.notify()
        self._thread.join()
        if self._error is not None:
            raise self._failure()

    def _failure(self) -> PublishError:
        return PublishError(self._unsent, self._error)

    def _run(self) -> None:
        while True:
            with self._lock:
                self._busy = False
                self._room.notify_all()
                while not self._queued and not self._closing:
                    self._more.wait()
                if not self._queued:
                    return
                taken, self._queued = self._queued[:MAX_BATCH], self._queued[MAX_BATCH:]
                self._busy = True
            batch = [out for out, _ in taken]
            try:
                self._send(batch, [task_id(out) for out, tracked in taken if tracked])
            except BaseException as exc:  # noqa: BLE001 - handed to the caller as PublishError
                with self._lock:
                    self._error = exc
                    self._unsent = [task_id(out) for out in batch] + [
                        task_id(out) for out, _ in self._queued]
                    self._queued = []
                    self._room.notify_all()
                return


def task_id(out: Outgoing) -> str:
    return str(out.envelope.headers.get("id", ""))


_current: ContextVar[tuple[App, Pipeline] | None] = ContextVar("kernel_pipeline", default=None)


def current(app: App) -> Pipeline | None:
    """The pipeline of the block this code runs in, if it belongs to `app`."""
    found = _current.get()
    return found[1] if found is not None and found[0] is app else None
