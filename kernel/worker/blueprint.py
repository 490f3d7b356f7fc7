"""The worker's boot graph: bootsteps started in dependency order, stopped in reverse."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from kernel.errors import ConfigurationError
from kernel.interfaces.bootstep import Bootstep

log = logging.getLogger("kernel.worker")


class Blueprint:
    """Orders steps by their ``requires``; values named in `provided` are available up front."""

    def __init__(self, steps: Iterable[type[Bootstep]], provided: Iterable[str] = ()) -> None:
        self.provided = tuple(provided)
        by_name: dict[str, type[Bootstep]] = {}
        for step in steps:
            if step.name in by_name or step.name in self.provided:
                raise ConfigurationError(f"two bootsteps are named {step.name!r}; rename one")
            by_name[step.name] = step
        self.steps = by_name
        self.order = self._sort()
        self.started: list[Bootstep] = []

    def _sort(self) -> list[type[Bootstep]]:
        order: list[type[Bootstep]] = []
        state: dict[str, str] = {}

        def visit(name: str, path: tuple[str, ...]) -> None:
            if name in self.provided or state.get(name) == "done":
                return
            if state.get(name) == "visiting":
                raise ConfigurationError(f"bootsteps depend on each other in a cycle: "
                                         f"{' -> '.join((*path, name))}")
            step = self.steps.get(name)
            if step is None:
                raise ConfigurationError(f"bootstep {path[-1]!r} requires {name!r}, which no "
                                         f"installed plugin provides")
            state[name] = "visiting"
            for dep in step.requires:
                visit(dep, (*path, name))
            state[name] = "done"
            order.append(step)

        for name in sorted(self.steps):
            visit(name, ())
        return order

    def start(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Start every step; a failure stops those already started and re-raises."""
        found = dict(values)
        for step_cls in self.order:
            step = step_cls()
            try:
                found[step.name] = step.start(**{dep: found[dep] for dep in step.requires})
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
        for name in self.provided:
            lines.append(f'  "{name}" [style=dashed];')
        for step in self.order:
            lines.append(f'  "{step.name}";')
            for dep in step.requires:
                lines.append(f'  "{step.name}" -> "{dep}";')
        lines.append("}")
        return "\n".join(lines)
