"""Pipelined publishing: ``with app.pipelined(): ...`` lets `delay` return before the broker
has answered, while one background thread sends what the caller queues, in order, as batches.

Guarantees (see docs/user-guide/tasks.md, "Publishing many tasks fast"):

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from kernel.errors import PublishError
from kernel.interfaces.transport import Outgoing

if TYPE_CHECKING:
    from kernel.app import App

#: messages queued for the background sender before a caller waits for room.
MAX_QUEUED = 10_000
#: the most messages one broker call carries.
MAX_BATCH = 1_000

Send = Callable[[list[Outgoing], list[str]], None]


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


@contextmanager
def pipelined(app: App, send: Send) -> Iterator[None]:
    if current(app) is not None:  # nested: the outer block already waits for everything
        yield
        return
    pipeline = Pipeline(send)
    token = _current.set((app, pipeline))
    try:
        yield
    except BaseException:
        _current.reset(token)
        pipeline.close()  # publish what was sent before the error, then let the error through
        raise
    _current.reset(token)
    pipeline.close()
