"""Tasks: a function registered with an App, callable locally and sendable to workers.

`Task[P, R]` keeps the function's parameters, so a type checker rejects ``add.delay("x")`` for
``def add(x: int, y: int) -> int``. An ``async def`` task is `Task[P, R]` with R the awaited type.
"""

from __future__ import annotations

import inspect
import random
import sys
import threading
import traceback as tb_module
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar

from typing_extensions import ParamSpec, Unpack

from kernel import states
from kernel.errors import Ignore, MaxRetriesExceededError, Retry
from kernel.message import Request, current_request, new_id
from kernel.options import SendOptions, TaskOptions
from kernel.result import AsyncResult, EagerResult

if TYPE_CHECKING:
    from kernel.app import App
    from kernel.canvas import Signature, chunks, xmap, xstarmap

P = ParamSpec("P")
R = TypeVar("R")


_loops = threading.local()


def run_coroutine_fn(fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    """Run an ``async def`` task from sync code on this thread's event loop (one per thread,
    reused, so connections a task caches on the loop survive between tasks)."""
    import asyncio  # lazily: most processes never run an async task

    loop = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = _loops.loop = asyncio.new_event_loop()
    return loop.run_until_complete(fn(*args, **kwargs))


class Task(Generic[P, R]):
    """A registered task. Create with ``@app.task``."""

    def __init__(self, app: App, fn: Callable[..., Any], name: str, options: TaskOptions) -> None:
        self.app = app
        self.fn = fn
        self.name = name
        self.options = options
        self.is_async = inspect.iscoroutinefunction(fn)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        self.__module__ = fn.__module__
        self.__qualname__ = getattr(fn, "__qualname__", name)

    def __repr__(self) -> str:
        return f"<Task {self.name}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the function here, in this process (an async task returns its coroutine)."""
        return self.fn(*args, **kwargs)  # type: ignore[no-any-return]

    def __reduce__(self) -> tuple[Any, ...]:
        return (_task_by_name, (self.app, self.name))

    # ------------------------------------------------------------------ sending

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """Send the task with these arguments and the task's default options."""
        return self.apply_async(args, kwargs)

    async def adelay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """`delay` for async code: publishing runs in a thread, never blocking the loop."""
        import asyncio

        return await asyncio.to_thread(self.apply_async, args, kwargs)

    def apply_async(self, args: tuple[Any, ...] | list[Any] | None = None,
                    kwargs: dict[str, Any] | None = None,
                    **options: Unpack[SendOptions]) -> AsyncResult[R]:
        """Send the task. `countdown` (s) or `eta` delay it at the broker; `expires` (s from now
        or a datetime) makes a worker skip it once passed; `queue`, `priority` and `headers`
        override the task's defaults; every option is listed in `kernel.options.SendOptions`
        (``time_limit``, ``soft_time_limit``, ``ignore_result``, ``serializer``,
        ``compression``, ``link``, ``link_error``, ``shadow``, ...)."""
        if self.app.conf.task_always_eager:
            return self.apply(args, kwargs, task_id=options.get("task_id"))
        return self.app.producer.send(self.name, args, kwargs, options, self)

    def delay_on_commit(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """`delay`, once the current database transaction commits (at once outside one), so
        a worker finds the rows the transaction wrote; nothing is sent if it rolls back.
        Needs a plugin that knows the transactions (kernel-django)."""
        self.app.on_commit(lambda: self.apply_async(args, kwargs))

    def apply_async_on_commit(self, args: tuple[Any, ...] | list[Any] | None = None,
                              kwargs: dict[str, Any] | None = None,
                              **options: Unpack[SendOptions]) -> None:
        """`apply_async` once the current database transaction commits (`delay_on_commit`)."""
        self.app.on_commit(lambda: self.apply_async(args, kwargs, **options))

    def apply(
        self,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        task_id: str | None = None,
    ) -> EagerResult[R]:
        """Run the task here and now and wrap the outcome in a result (eager mode)."""
        task_id = task_id or new_id()
        call_args, call_kwargs = list(args or ()), dict(kwargs or {})
        # `self.request` works inline too (a retry from an eager task is not supported).
        token = current_request.set(Request(task_id, self.name, {}, {}, root_id=task_id,
                                            args=call_args, kwargs=call_kwargs))
        try:
            value = self.run(call_args, call_kwargs)
        except Exception as exc:
            if self.app.conf.task_eager_propagates:
                raise
            tb = "".join(tb_module.format_exception(*sys.exc_info()))
            return EagerResult(task_id, self.app, states.FAILURE, exc, tb)
        finally:
            current_request.reset(token)
        return EagerResult(task_id, self.app, states.SUCCESS, value, None)

    def run(self, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Execute the function with decoded arguments (async functions run to completion)."""
        if self.options.bind:
            args = [self, *args]
        if self.is_async:
            return run_coroutine_fn(self.fn, args, kwargs)
        return self.fn(*args, **kwargs)

    # ------------------------------------------------------------------ retrying

    @property
    def request(self) -> Request:
        """The message being run, while a worker runs this task (``bind=True`` tasks reach it
        as ``self.request``): id, retries, headers, delivery_info, args, kwargs."""
        request = current_request.get()
        if request is None:
            raise RuntimeError(f"{self.name}.request is only set while a worker runs the task")
        return request

    def retry(self, exc: BaseException | None = None, *, max_retries: int | None = None,
              **options: Unpack[SendOptions]) -> Retry:
        """Send this task again (same id, retries + 1) and end the current run: always
        ``raise self.retry(exc=..., countdown=...)``; without ``countdown`` or ``eta`` the
        task's backoff decides when.

        Past ``max_retries`` it raises `exc` if given, else `MaxRetriesExceededError`.
        """
        raise self.resend(self.request, exc, max_retries=max_retries, **options)

    def backoff(self, retries: int) -> float:
        """Seconds before retry number `retries` + 1 under this task's backoff options."""
        opts = self.options
        if not opts.retry_backoff:
            return opts.default_retry_delay
        factor = 1.0 if opts.retry_backoff is True else float(opts.retry_backoff)
        ceiling = min(opts.retry_backoff_max, factor * 2.0 ** min(retries, 64))
        return random.uniform(0, ceiling) if opts.retry_jitter else ceiling

    def resend(self, request: Request, exc: BaseException | None = None, *,
               max_retries: int | None = None, **options: Unpack[SendOptions]) -> Retry:
        """Publish the retry of `request` and return the `Retry` to raise (shared by
        `retry` and automatic retries)."""
        limit = self.options.max_retries if max_retries is None else max_retries
        if limit is not None and request.retries >= limit:
            if exc is not None:
                raise exc
            raise MaxRetriesExceededError(
                f"task {self.name}[{request.id}] asked for retry {request.retries + 1}, "
                f"more than max_retries={limit}")
        countdown, eta = options.get("countdown"), options.get("eta")
        if countdown is None and eta is None:
            countdown = self.backoff(request.retries)
        if not request.ignore_result and self.app.conf.result_backend:
            # Recorded before the retry is sent: written after, it could hide the retry's
            # own result if the retry finished first.
            self.app.backend.store_result(request.id, states.RETRY,
                                          exc if exc is not None else Retry(None, countdown),
                                          request=request)
        embed = request.embed
        same: SendOptions = {
            "task_id": request.id, "countdown": countdown, "eta": eta,
            "retries": request.retries + 1, "root_id": request.root_id,
            "parent_id": request.parent_id, "group_id": request.group_id,
            "group_index": request.group_index, "link": embed.get("callbacks"),
            "link_error": embed.get("errbacks"), "chain": embed.get("chain"),
            "chord": embed.get("chord"), "queue": request.queue,
            "time_limit": request.time_limit, "soft_time_limit": request.soft_time_limit,
            "headers": _carried(request.headers),
            "reply_to": request.properties.get("reply_to")}
        self.app.producer.send(self.name, request.args, request.kwargs, {**same, **options},
                               self)
        return Retry(exc, countdown)

    # ------------------------------------------------------------------ signatures

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A signature: this task with (possibly partial) arguments, to send later or link."""
        from kernel.canvas import Signature

        return Signature(self.name, args, kwargs, app=self.app)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """An immutable signature: a parent's result is not prepended to its arguments."""
        return self.s(*args, **kwargs).set(immutable=True)

    def map(self, it: Iterable[Any]) -> xmap:
        """One message that calls this task with each item of `it`, in the worker."""
        from kernel.canvas import xmap

        return xmap(self.s(), it, app=self.app)

    def starmap(self, it: Iterable[Sequence[Any]]) -> xstarmap:
        """Like `map`, each item being the argument tuple."""
        from kernel.canvas import xstarmap

        return xstarmap(self.s(), it, app=self.app)

    def chunks(self, it: Iterable[Sequence[Any]], n: int) -> chunks:
        """This task over the argument tuples of `it`, `n` calls per message."""
        from kernel.canvas import chunks

        return chunks(self.s(), it, n, app=self.app)

    def replace(self, sig: Signature) -> NoReturn:
        """End this run and let `sig` take its place: it takes this task's id (so the
        caller's result handle gets its result), its place in a group or chord, the rest of
        its chain and its callbacks. A group is collected into one result, the list of its
        members' results. Call from a running task: ``return self.replace(other.s(...))``."""
        from kernel.canvas import Publisher, Signature, chord, group

        request = self.request
        if isinstance(sig, group):
            sig = chord(sig, Signature("celery.accumulate", kwargs={"index": 0}, app=self.app))
        embed = request.embed
        sig.bake({
            "task_id": request.id, "group_id": request.group_id,
            "group_index": request.group_index, "chord": embed.get("chord"),
            "chain": embed.get("chain"), "link": embed.get("callbacks"),
            "link_error": embed.get("errbacks"), "parent_id": request.parent_id,
            "root_id": request.root_id,
        }).run((), {}, Publisher(self.app))
        raise Ignore(f"task {self.name}[{request.id}] was replaced by {sig!r}")

    def with_options(self, **options: Any) -> Task[P, R]:
        """A copy of this task with other default options (not registered)."""
        return Task(self.app, self.fn, self.name, replace(self.options, **options))


def _carried(headers: dict[str, Any]) -> dict[str, Any]:
    """Headers a retry keeps: the user's own and kernel's claims (not the protocol's, which
    the retry sets anew)."""
    from kernel.message import PROTOCOL_HEADERS

    return {k: v for k, v in headers.items() if k not in PROTOCOL_HEADERS}


def _task_by_name(app: App, name: str) -> Task[Any, Any]:
    return app.tasks[name]
