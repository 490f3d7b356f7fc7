"""The middleware pipeline: every registered middleware, placed by the names it declares, its
before-hooks in that order and its after-hooks in reverse. A middleware that raises is logged
and skipped; it never fails the task or the worker."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from kernel.errors import ConfigurationError
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


class Pipeline:
    def __init__(self, middleware: Sequence[Middleware]) -> None:
        self.middleware = list(middleware)
        self._reversed = list(reversed(self.middleware))

    @classmethod
    def of(cls, specs: Iterable[MiddlewareSpec]) -> Pipeline:
        return cls([spec.factory() for spec in ordered(specs)])

    def before(self, call: Call) -> None:
        for mw in self.middleware:
            try:
                mw.before(call)
            except Exception:
                log.exception("middleware %s failed before task %s", mw.name, call.request.id)

    def after(self, call: Call) -> None:
        for mw in self._reversed:
            try:
                mw.after(call)
            except Exception:
                log.exception("middleware %s failed after task %s", mw.name, call.request.id)
