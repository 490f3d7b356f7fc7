"""The middleware pipeline: every registered middleware, placed by the names it declares, its
before-hooks in that order and its after-hooks in reverse. A middleware that raises is logged
and skipped; it never fails the task or the worker. A critical one (`Middleware.critical`)
that cannot reach its store is retried with backoff, and if it still cannot finish the
message is left unacknowledged (`Unfinished`): no result is lost for an ack."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterable, Sequence

from kernel.config import Config
from kernel.errors import ConfigurationError, ConnectionFailed
from kernel.interfaces.middleware import Call, Middleware
from kernel.specs import MiddlewareSpec

log = logging.getLogger("kernel.worker")


def ordered(specs: Iterable[MiddlewareSpec]) -> list[MiddlewareSpec]:
    """`specs` in pipeline order: each before the names in its ``before`` and after those in
    its ``after`` (names no installed middleware has are ignored: the plugin is not there);
    otherwise by name, so the order never depends on installation order."""
    by_name = {spec.name: spec for spec in specs}
    follows: dict[str, set[str]] = {name: set() for name in by_name}
    for spec in by_name.values():
        follows[spec.name] |= {n for n in spec.after if n in by_name}
        for other in spec.before:
            if other in by_name:
                follows[other].add(spec.name)
    order: list[MiddlewareSpec] = []
    placed: set[str] = set()
    while len(order) < len(by_name):
        ready = sorted(n for n in by_name if n not in placed and follows[n] <= placed)
        if not ready:
            stuck = sorted(n for n in by_name if n not in placed)
            raise ConfigurationError(f"middleware {', '.join(stuck)} declare before=/after= "
                                     f"places that contradict each other; fix one of them")
        placed.add(ready[0])
        order.append(by_name[ready[0]])
    return order


class Unfinished(Exception):  # noqa: N818 - a state, not a failure of the caller
    """A critical middleware could not finish its after-hook: the message must not be acked."""

    def __init__(self, middleware: str, cause: BaseException) -> None:
        super().__init__(f"middleware {middleware!r} could not finish ({type(cause).__name__}: "
                         f"{cause}); the message goes back to the broker and runs again")
        self.middleware = middleware


class Pipeline:
    def __init__(self, middleware: Sequence[Middleware], conf: Config) -> None:
        self.middleware = list(middleware)
        self._reversed = list(reversed(self.middleware))
        self._retry = conf.result_backend_always_retry
        self._max_retries = conf.result_backend_max_retries
        self._base = conf.result_backend_base_sleep_between_retries_ms / 1000
        self._cap = conf.result_backend_max_sleep_between_retries_ms / 1000
        #: set when the worker stops: retries end, and the message goes back unacked.
        self.stopping = threading.Event()

    @classmethod
    def of(cls, specs: Iterable[MiddlewareSpec], conf: Config) -> Pipeline:
        return cls([spec.factory() for spec in ordered(specs)], conf)

    def before(self, call: Call) -> None:
        for mw in self.middleware:
            try:
                mw.before(call)
            except Exception:
                log.exception("middleware %s failed before task %s", mw.name, call.request.id)

    def after(self, call: Call) -> None:
        """Every after-hook, innermost first; `Unfinished` once a critical one cannot finish
        (those further out are not run: the task runs again and they with it)."""
        for mw in self._reversed:
            if mw.critical:
                self._critical_after(mw, call)
                continue
            try:
                mw.after(call)
            except Exception:
                log.exception("middleware %s failed after task %s", mw.name, call.request.id)

    def _critical_after(self, mw: Middleware, call: Call) -> None:
        attempt = 0
        while True:
            try:
                mw.after(call)
                return
            except ConnectionFailed as exc:
                attempt += 1
                if not self._retry or self.stopping.is_set() or (
                        self._max_retries is not None and attempt > self._max_retries):
                    raise Unfinished(mw.name, exc) from exc
                pause = random.uniform(0, min(self._cap, self._base * 2 ** min(attempt, 30)))
                log.warning("middleware %s cannot finish task %s[%s] (%s); retrying in "
                            "%.2f s (attempt %d); the message stays unacknowledged meanwhile",
                            mw.name, call.request.name, call.request.id, exc, pause, attempt)
                if self.stopping.wait(pause):
                    raise Unfinished(mw.name, exc) from exc
            except Exception as exc:  # noqa: BLE001 - a bug: the message comes back, capped
                log.exception("middleware %s failed after task %s", mw.name, call.request.id)
                raise Unfinished(mw.name, exc) from exc
