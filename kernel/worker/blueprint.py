"""The worker's boot graph: bootsteps started in dependency order, stopped in reverse."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from kernel.errors import ConfigurationError
from kernel.interfaces.bootstep import Bootstep, WorkerOptions

if TYPE_CHECKING:
    from kernel.app import App

log = logging.getLogger("kernel.worker")

V = TypeVar("V")


class StepDeps:
    """`kernel.interfaces.bootstep.Deps` for one starting step: only what it requires."""

    def __init__(self, app: App, options: WorkerOptions, step: type[Bootstep[Any]],
                 started: dict[type[Bootstep[Any]], Any]) -> None:
        self._app, self._options, self._step, self._started = app, options, step, started

    @property
    def app(self) -> App:
        return self._app

    @property
    def options(self) -> WorkerOptions:
        return self._options

    def __getitem__(self, step: type[Bootstep[V]]) -> V:
        if step not in self._step.requires:
            raise ConfigurationError(f"bootstep {self._step.name!r} uses {step.name!r} without "
                                     f"requiring it; add it to {self._step.__qualname__}.requires")
        value: V = self._started[step]
        return value


class Blueprint:
    """Orders steps by their ``requires``."""

    def __init__(self, steps: Iterable[type[Bootstep[Any]]]) -> None:
        by_name: dict[str, type[Bootstep[Any]]] = {}
        for step in steps:
            if step.name in by_name:
                raise ConfigurationError(f"two bootsteps are named {step.name!r} "
                                         f"({by_name[step.name].__qualname__} and "
                                         f"{step.__qualname__}); rename one")
            by_name[step.name] = step
        self.steps = by_name
        self.order = self._sort()
        self.started: list[Bootstep[Any]] = []

    def _sort(self) -> list[type[Bootstep[Any]]]:
        order: list[type[Bootstep[Any]]] = []
        state: dict[str, str] = {}

        def visit(step: type[Bootstep[Any]], path: tuple[str, ...]) -> None:
            if state.get(step.name) == "done":
                return
            if state.get(step.name) == "visiting":
                raise ConfigurationError(f"bootsteps depend on each other in a cycle: "
                                         f"{' -> '.join((*path, step.name))}")
            if self.steps.get(step.name) is not step:
                raise ConfigurationError(f"bootstep {path[-1]!r} requires {step.name!r}, which "
                                         f"no installed plugin registers (or it is disabled)")
            state[step.name] = "visiting"
            for dep in step.requires:
                visit(dep, (*path, step.name))
            state[step.name] = "done"
            order.append(step)

        for name in sorted(self.steps):
            visit(self.steps[name], ())
        return order

    def start(self, app: App, options: WorkerOptions) -> dict[type[Bootstep[Any]], Any]:
        """Start every step; a failure stops those already started and re-raises."""
        found: dict[type[Bootstep[Any]], Any] = {}
        for step_cls in self.order:
            step = step_cls()
            try:
                found[step_cls] = step.start(StepDeps(app, options, step_cls, found))
            except BaseException:
                self.stop()
                raise
            self.started.append(step)
        return found

    def stop(self) -> None:
        while self.started:
            step = self.started.pop()
            try:
                step.stop()
            except Exception:
                log.exception("bootstep %s failed to stop", step.name)

    def dot(self) -> str:
        """The graph in Graphviz DOT: an edge from each step to what it requires."""
        lines = ["digraph worker {", "  rankdir=BT;", '  node [shape=box, fontname="monospace"];']
        for step in self.order:
            lines.append(f'  "{step.name}";')
            for dep in step.requires:
                lines.append(f'  "{step.name}" -> "{dep.name}";')
        lines.append("}")
        return "\n".join(lines)
