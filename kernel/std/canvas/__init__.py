"""The canvas on the worker (std plugin ``canvas``): chord counting as middleware
(`kernel.std.canvas.chords`) and the built-in ``celery.*`` tasks (`kernel.std.canvas.tasks`).
Light: both are imported when an App is created and a worker builds its pipeline."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from kernel.plugin import Lazy, MiddlewareSpec, hookimpl

if TYPE_CHECKING:
    from kernel.app import App


@hookimpl
def kernel_app_created(app: App) -> None:
    from kernel.std.canvas.tasks import register_builtins

    register_builtins(app)


@hookimpl
def kernel_middleware() -> Iterable[MiddlewareSpec]:
    # Inside the callbacks, outside the results: a finished chord's body is sent once its last
    # member's result can be read.
    yield MiddlewareSpec("chord", Lazy("kernel.std.canvas.chords:CountChords"),
                         before=("results",), after=("callbacks",))
