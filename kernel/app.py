"""The App: configuration, plugins, the task registry, and the client side of sending tasks."""

from __future__ import annotations

import os
import sys
import time
import weakref
from collections.abc import Callable, Coroutine, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

from typing_extensions import ParamSpec

from kernel import publisher, states, unique
from kernel.backend import ResultBackend
from kernel.codec import Codec
from kernel.config import Config, first_set
from kernel.errors import ConfigurationError, MissingCapability
from kernel.interfaces.transport import Outgoing, Transport
from kernel.message import absolute_time, build_task, current_request, new_id
from kernel.hookspecs import hookimpl
from kernel.plugins import PluginManager
from kernel.signals import SIGNALS, Signals
from kernel.result import AsyncResult
from kernel.task import Task, TaskOptions

if TYPE_CHECKING:
    from kernel.interfaces.ratelimit import RateLimitStore
    from kernel.revocation import Control

P = ParamSpec("P")
R = TypeVar("R")

_SEND_OPTIONS = frozenset({
    "serializer", "compression", "time_limit", "soft_time_limit", "ignore_result", "link",
    "link_error", "shadow", "parent_id", "root_id", "group_id", "group_index", "retries",
    "chain", "chord", "reply_to",
})

_apps: weakref.WeakSet[App] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # Connections opened before a fork belong to the parent: never use them in the child.
    for app in list(_apps):
        app._forget_connections()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _TaskDecorator(Protocol):
    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]]) -> Task[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R]) -> Task[P, R]: ...


class App:
    """A kernel application.

    ``App("proj", broker="redis://localhost", results="redis://localhost")``; with nothing given,
    broker and results are the embedded SQLite file ``kernel.db`` in the working directory.
    ``plugins=[...]`` registers plugin objects programmatically (before entry points);
    ``autoload=False`` skips entry points; ``disable=[...]`` turns plugins off by name.
    """

    def __init__(
        self,
        name: str = "kernel",
        *,
        broker: str | None = None,
        results: str | None = None,
        plugins: Sequence[object] = (),
        config: dict[str, Any] | Config | None = None,
        autoload: bool | None = None,
        disable: Iterable[str] = (),
    ) -> None:
        self.main = name
        self.plugins = PluginManager(plugins, autoload=autoload, disabled=disable)
        if isinstance(config, Config):
            self.conf = config
        else:
            values = dict(config or {})
            if broker is not None:
                values["broker_url"] = broker
                if results is None and "result_backend" not in values and (
                        "KERNEL_RESULT_BACKEND" not in os.environ):
                    scheme = broker.partition("://")[0]
                    values["result_backend"] = (
                        broker if scheme in self.plugins.registry("result store") else None)
            if results is not None:
                values["result_backend"] = results
            self.conf = Config.from_mapping(values)
        self.tasks: dict[str, Task[Any, Any]] = {}
        self._module = sys._getframe(1).f_globals.get("__name__")
        self._import_spec: str | None = None
        self._transport: Transport | None = None
        self._backend: ResultBackend | None = None
        self._rate_limits: RateLimitStore | None = None
        self._codec: Codec | None = None
        self._signals: Signals | None = None
        self._pid = os.getpid()
        _apps.add(self)
        self.plugins.hook.kernel_app_created(app=self)

    def __repr__(self) -> str:
        return f"<App {self.main}>"

    # ------------------------------------------------------------------ pickling (prefork)

    @property
    def import_spec(self) -> str:
        """``module:attribute`` where this app can be imported from (how pool children find it)."""
        if self._import_spec is None:
            self._import_spec = self._find_spec()
        return self._import_spec

    @import_spec.setter
    def import_spec(self, spec: str) -> None:
        self._import_spec = spec

    def _find_spec(self) -> str:
        candidates = [self._module] if self._module else []
        candidates += [name for name in list(sys.modules) if name != self._module]
        for modname in candidates:
            module = sys.modules.get(modname)
            for attr, value in list(getattr(module, "__dict__", {}).items()):
                if value is self:
                    return f"{modname}:{attr}"
        raise ConfigurationError(
            f"app {self.main!r} is not a module-level name, so pool processes cannot import it; "
            f"define it at module level and start the worker with -A module:app")

    def __reduce__(self) -> tuple[Any, ...]:
        from kernel.loader import load_app

        return (load_app, (self.import_spec,))

    # ------------------------------------------------------------------ connections

    def _forget_connections(self) -> None:
        self._transport = None
        self._backend = None
        self._rate_limits = None
        self._pid = os.getpid()

    @property
    def codec(self) -> Codec:
        if self._codec is None:
            self._codec = Codec(
                self.plugins.registry("serializer"),
                self.plugins.registry("compressor"),
                accept=self.conf.accept_content,
            )
        return self._codec

    @property
    def transport(self) -> Transport:
        """This process's broker connection, created on first use."""
        if self._transport is None:
            url = self.conf.broker_url
            spec = self.plugins.registry("transport").get(url.partition("://")[0])
            # The worker renews leases every third of worker_lease_seconds; transports with
            # leases take their length from the same setting unless told otherwise.
            options = {"lease_seconds": self.conf.worker_lease_seconds,
                       **self.conf.transport_options}
            self._transport = spec.factory(url, options)
        return self._transport

    @property
    def backend(self) -> ResultBackend:
        """This process's result backend, created on first use."""
        if self._backend is None:
            url = self.conf.result_backend
            store = None
            if url:
                spec = self.plugins.registry("result store").get(url.partition("://")[0])
                # Stores that work through the broker (rpc://) find it, and how to connect to
                # it (TLS settings, timeouts), here.
                store = spec.factory(url, {"broker_url": self.conf.broker_url,
                                           "broker_options": dict(self.conf.transport_options),
                                           **self.conf.result_backend_options})
            self._backend = ResultBackend(store, self.codec, self.conf.result_serializer,
                                          self.conf.result_expires)
        return self._backend

    @property
    def rate_limits(self) -> RateLimitStore:
        """This process's rate-limit store (``rate_limit_store``, else the result backend's
        URL), created on first use."""
        if self._rate_limits is None:
            url = self.conf.rate_limit_store or self.conf.result_backend
            if not url:
                raise ConfigurationError("global rate limits keep shared token buckets in a "
                                         "rate-limit store: set rate_limit_store (or "
                                         "result_backend) to a redis:// or sqlite:// URL")
            spec = self.plugins.registry("rate-limit store").get(url.partition("://")[0])
            self._rate_limits = spec.factory(url, self.conf.result_backend_options)
        return self._rate_limits

    def require_multi_process(self) -> None:
        """A worker in its own process needs a broker other processes can reach."""
        spec = self.plugins.registry("transport").get(self.conf.broker_url.partition("://")[0])
        if not spec.capabilities.multi_process:
            raise MissingCapability(
                f"broker {spec.name!r} lives inside one process; a separate worker cannot read "
                f"it; use sqlite:// (the default) or a server broker")

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        if self._backend is not None and self._backend.store is not None:
            self._backend.store.close()
        if self._rate_limits is not None:
            self._rate_limits.close()
        self._forget_connections()

    # ------------------------------------------------------------------ tasks

    @overload
    def task(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> Task[P, R]: ...
    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...
    @overload
    def task(self, *, name: str | None = None, **options: Any) -> _TaskDecorator: ...

    def task(self, fn: Callable[..., Any] | None = None, /, *, name: str | None = None,  # type: ignore[misc]
             **options: Any) -> Any:
        """Register a function (sync or ``async def``) as a task.

        Options: queue, max_retries, acks_late, reject_on_worker_lost, ignore_result,
        time_limit, soft_time_limit, rate_limit, serializer, compression, priority, bind, and any
        option a plugin declares through ``kernel_task_options``.
        """
        known = TaskOptions.names()
        plugin_opts = {opt for found in self.plugins.hook.kernel_task_options() for opt in found}
        unknown = set(options) - known - plugin_opts
        if unknown:
            raise ConfigurationError(
                f"unknown task option(s) {', '.join(sorted(unknown))}; known: "
                f"{', '.join(sorted(known | plugin_opts))}")
        extra = {k: options.pop(k) for k in list(options) if k in plugin_opts and k not in known}
        task_options = TaskOptions(**options, extra=extra)
        from kernel.worker.ratelimit import parse_rate

        for rate in (task_options.rate_limit, task_options.global_rate_limit):
            if rate is not None:
                parse_rate(rate)  # a bad rate is an error here, not in a running worker
        if (task_options.unique or task_options.unique_key
                or task_options.unique_for) and not self.conf.result_backend:
            raise ConfigurationError("unique tasks keep their claims in the result store: set "
                                     "result_backend")
        if task_options.global_rate_limit and not (self.conf.rate_limit_store
                                                   or self.conf.result_backend):
            raise ConfigurationError("a global_rate_limit keeps shared token buckets in a "
                                     "rate-limit store: set rate_limit_store (or "
                                     "result_backend)")

        def register(func: Callable[..., Any]) -> Task[Any, Any]:
            module = func.__module__
            if module == "__main__":
                module = self.main
            task_name = name or f"{module}.{func.__qualname__}"
            task: Task[Any, Any] = Task(self, func, task_name, task_options)
            self.tasks[task_name] = task
            return task

        return register(fn) if fn is not None else register

    # ------------------------------------------------------------------ sending

    def _envelope(self, name: str, args: Any, kwargs: Any, *, task_id: str | None,
                  countdown: float | None, eta: datetime | float | None,
                  expires: float | datetime | None, queue: str | None, priority: int | None,
                  headers: dict[str, Any] | None, task: Task[Any, Any] | None,
                  options: dict[str, Any]) -> tuple[Outgoing, str, bool]:
        unknown = set(options) - _SEND_OPTIONS
        if unknown:
            raise TypeError(f"unknown sending option(s): {', '.join(sorted(unknown))}")
        conf = self.conf
        topts = task.options if task is not None else (
            self.tasks[name].options if name in self.tasks else TaskOptions())
        now = time.time()
        eta_ts = absolute_time(now, countdown, eta)
        exp_ts = absolute_time(now, expires if not isinstance(expires, datetime) else None,
                               expires if isinstance(expires, datetime) else None)
        task_id = task_id or new_id()
        parent = current_request.get()
        link = options.get("link")
        link_error = options.get("link_error")
        embed = {
            "callbacks": _as_list(link),
            "errbacks": _as_list(link_error),
            "chain": options.get("chain"),
            "chord": options.get("chord"),
        }
        args_list = list(args or ())
        kwargs_dict = dict(kwargs or {})
        body, ctype, cenc, cmime = self.codec.encode(
            [args_list, kwargs_dict, embed],
            options.get("serializer") or topts.serializer or conf.task_serializer,
            options.get("compression") or topts.compression or conf.task_compression,
        )
        ignore = first_set(options.get("ignore_result"), topts.ignore_result,
                        conf.task_ignore_result) or conf.result_backend is None
        prio = first_set(priority, topts.priority, conf.task_default_priority)
        envelope = build_task(
            name=name, task_id=task_id, args=args_list, kwargs=kwargs_dict, body=body,
            content_type=ctype, content_encoding=cenc, compression=cmime, now=now,
            eta=eta_ts, expires=exp_ts, retries=options.get("retries", 0),
            time_limit=first_set(options.get("time_limit"), topts.time_limit,
                                 conf.task_time_limit),
            soft_time_limit=first_set(options.get("soft_time_limit"), topts.soft_time_limit,
                                   conf.task_soft_time_limit),
            root_id=options.get("root_id") or (parent.root_id if parent else None),
            parent_id=options.get("parent_id") or (parent.id if parent else None),
            group_id=options.get("group_id"), group_index=options.get("group_index"),
            shadow=options.get("shadow"), ignore_result=bool(ignore), priority=prio,
            reply_to=options.get("reply_to") or (None if ignore else
                                                 self.backend.reply_address()),
            headers=headers,
        )
        if parent is not None:
            parent.children.append([[task_id, None], None])
        target = queue or topts.queue or conf.task_default_queue
        outgoing = Outgoing(target, envelope, priority=prio,
                            not_before=eta_ts if eta_ts and eta_ts > now else None)
        return outgoing, task_id, bool(ignore)

    def send_task(
        self,
        name: str,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        task_id: str | None = None,
        countdown: float | None = None,
        eta: datetime | float | None = None,
        expires: float | datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
        headers: dict[str, Any] | None = None,
        _task: Task[Any, Any] | None = None,
        **options: Any,
    ) -> AsyncResult[Any]:
        """Send a task by name (it need not be registered here); see `Task.apply_async`."""
        task = _task or self.tasks.get(name)
        claim_key = None
        if task is not None and not options.get("retries"):
            claim_key = unique.key_for(task, args or (), kwargs or {})
        if claim_key is not None:
            task_id = task_id or new_id()
            ttl = task.options.unique_for or unique.DEFAULT_FOR  # type: ignore[union-attr]
            holder = unique.claim(self, claim_key, task_id, ttl)
            if holder is not None:
                return AsyncResult(holder, self)
            headers = {**(headers or {}), unique.HEADER: claim_key}
        outgoing, task_id, ignored = self._envelope(
            name, args, kwargs, task_id=task_id, countdown=countdown, eta=eta, expires=expires,
            queue=queue, priority=priority, headers=headers, task=_task, options=options)
        try:
            self._publish([outgoing], [] if ignored or options.get("retries") else [task_id],
                          wait=claim_key is not None)
        except BaseException:
            if claim_key is not None:
                unique.release(self, claim_key)
            raise
        return AsyncResult(task_id, self, ignored=ignored)

    def send_many(self, calls: Iterable[tuple[Task[Any, Any] | str, Sequence[Any],
                                              dict[str, Any]]
                                        | tuple[Task[Any, Any] | str, Sequence[Any],
                                                dict[str, Any], dict[str, Any]]],
                  **options: Any) -> list[AsyncResult[Any]]:
        """Send many tasks in one broker round trip: ``[(task_or_name, args, kwargs), ...]``;
        `options` apply to every call (queue, countdown, priority, ...), and a fourth element,
        a dict of options, to its call alone (task_id, group_id, ...)."""
        batch: list[Outgoing] = []
        results: list[AsyncResult[Any]] = []
        tracked: list[str] = []
        for call in calls:
            target, args, kwargs = call[0], call[1], call[2]
            own = {**options, **(call[3] if len(call) > 3 else {})}
            task = target if isinstance(target, Task) else self.tasks.get(target)
            name = target.name if isinstance(target, Task) else target
            if task is not None and unique.key_for(task, args, kwargs) is not None:
                # a unique task claims before it is sent: one at a time
                results.append(self.send_task(name, list(args), kwargs, _task=task, **own))
                continue
            fixed = {k: own.pop(k, None) for k in ("task_id", "countdown", "eta", "expires",
                                                   "queue", "priority", "headers")}
            outgoing, task_id, ignored = self._envelope(name, args, kwargs, task=task,
                                                        options=own, **fixed)
            batch.append(outgoing)
            results.append(AsyncResult(task_id, self, ignored=ignored))
            if not ignored:
                tracked.append(task_id)
        if batch:
            self._publish(batch, tracked)
        return results

    def pipelined(self) -> AbstractContextManager[None]:
        """``with app.pipelined(): ...``: `delay`, `apply_async` and `send_many` in the block
        return without waiting for the broker, and one background thread publishes what they
        send, in order, in batches. Leaving the block waits until every task is published, or
        raises `PublishError` naming those that were not (kernel.publisher says exactly what is
        promised). Unique tasks still publish synchronously, after what was sent before them."""
        return publisher.pipelined(self, self._send)

    def _publish(self, batch: list[Outgoing], tracked: list[str], wait: bool = False) -> None:
        signals = self.signals
        if signals.wanted("kernel_before_publish"):
            for out in batch:
                signals.send("kernel_before_publish", app=self, envelope=out.envelope,
                             queue=out.queue)
        pipeline = publisher.current(self)
        if pipeline is not None and wait:
            pipeline.wait_sent()
        if pipeline is None or wait or not pipeline.put(batch, tracked):
            self._send(batch, tracked)

    def _send(self, batch: list[Outgoing], tracked: list[str]) -> None:
        if tracked and self.conf.task_track_sent:
            # Before publishing: written after, it could land on top of a finished result.
            backend = self.backend
            backend.store_many([backend.record(i, states.PENDING, None) for i in tracked])
        self.transport.publish(batch)
        signals = self.signals
        if signals.wanted("kernel_after_publish"):
            for out in batch:
                signals.send("kernel_after_publish", app=self, envelope=out.envelope,
                             queue=out.queue)

    # ------------------------------------------------------------------ signals

    @property
    def signals(self) -> Signals:
        if self._signals is None:
            self._signals = Signals(self.plugins.pm)
        return self._signals

    def connect(self, signal: str, receiver: Callable[..., Any]) -> None:
        """Call `receiver` on a task signal: ``app.connect("task_failure", fn)`` where
        ``fn(call)`` takes the hook's arguments by name (see kernel.hookspecs, hooks
        ``kernel_<signal>``). Connect before a worker starts; pool processes that import the
        app connect again there."""
        name = f"kernel_{signal}"
        if name not in SIGNALS:
            close = get_close_matches(signal, [s[len("kernel_"):] for s in SIGNALS], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigurationError(f"no signal {signal!r}{hint}")
        plugin = type(f"Receiver_{signal}", (), {name: staticmethod(hookimpl(receiver))})
        self.plugins.register(plugin, name=f"receiver:{signal}:{id(receiver)}")
        self._signals = None

    @property
    def control(self) -> Control:
        """Commands for workers: ``app.control.revoke(ids, terminate=False)``."""
        from kernel.revocation import Control

        return Control(self)

    def AsyncResult(self, task_id: str) -> AsyncResult[Any]:
        return AsyncResult(task_id, self)


def _as_list(value: Any) -> list[Any] | None:
    if value is None:
        return None
    return list(value) if isinstance(value, (list, tuple)) else [value]

