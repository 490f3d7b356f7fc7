"""Tasks that belong to no App in particular (``@shared_task``), and the current App they use.

A reusable module (a Django app's ``tasks.py``) cannot import the project's App: it declares
its tasks with ``@shared_task``, and every App gets them, those that exist already and those
created later. Calling a shared task (``add.delay(2, 3)``) goes through the *current* App: the
last one created, or the one given to `set_current`; it is an error only if there is no App
at all when the task is called.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

from typing_extensions import ParamSpec

from kernel.errors import ConfigurationError
from kernel.options import TaskOptions
from kernel.task import Task

if TYPE_CHECKING:
    from kernel.app import App

P = ParamSpec("P")
R = TypeVar("R")

_lock = threading.Lock()
_apps: weakref.WeakSet[App] = weakref.WeakSet()
_current: weakref.ReferenceType[App] | None = None
#: every shared task declared so far, in order: (function, name, options).
_declared: list[tuple[Callable[..., Any], str, dict[str, Any]]] = []


def adopt(app: App, current: bool = True) -> None:
    """A new App: it becomes the current one (unless not `current`: Celery's
    ``set_as_current=False``) and gets every shared task (`App.__init__`)."""
    global _current
    with _lock:
        _apps.add(app)
        if current or _current is None or _current() is None:
            _current = weakref.ref(app)
        declared = list(_declared)
    for fn, name, options in declared:
        _bind(app, fn, name, options)


def set_current(app: App) -> None:
    """Make `app` the one shared tasks use from now on (`App.set_current`)."""
    global _current
    with _lock:
        _current = weakref.ref(app)


def current_app() -> App:
    """The App shared tasks use: the last created or set current; `ConfigurationError` if
    there is none."""
    app = _current() if _current is not None else None
    if app is None:
        raise ConfigurationError(
            "a shared task was used, but no kernel App exists in this process; create one "
            "(app = kernel.App('proj', ...)) in a module that is imported first, as Django "
            "projects do in proj/kernel.py, imported by proj/__init__.py")
    return app


def _bind(app: App, fn: Callable[..., Any], name: str, options: dict[str, Any]) -> None:
    if name not in app.tasks:
        app.task(fn, name=name, **options)  # type: ignore[call-overload]


class SharedTask(Task[P, R]):
    """A shared task: the task of that name in the current App, whichever it is."""

    def __init__(self, fn: Callable[..., Any], name: str, options: dict[str, Any]) -> None:
        known = {k: v for k, v in options.items() if k in TaskOptions.names()}
        super().__init__(None, fn, name, TaskOptions(**known))  # type: ignore[arg-type]

    @property
    def app(self) -> App:
        return current_app()

    @app.setter
    def app(self, value: App | None) -> None:
        pass  # always the current App: `Task.__init__` assigns None

    @property
    def options(self) -> TaskOptions:
        # The options as the current App checked them (plugins' options included).
        return self.app.tasks[self.name].options

    @options.setter
    def options(self, value: TaskOptions) -> None:
        pass

    def __repr__(self) -> str:
        return f"<shared task {self.name}>"


class _SharedDecorator(Protocol):
    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]]) -> Task[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R]) -> Task[P, R]: ...


@overload
def shared_task(fn: Callable[P, Coroutine[Any, Any, R]], /) -> Task[P, R]: ...
@overload
def shared_task(fn: Callable[P, R], /) -> Task[P, R]: ...
@overload
def shared_task(*, name: str | None = None, **options: Any) -> _SharedDecorator: ...


def shared_task(fn: Callable[..., Any] | None = None, /, *, name: str | None = None,
                **options: Any) -> Any:
    """``@shared_task`` or ``@shared_task(name=..., queue=..., ...)``: declare a task for every
    App (the options are `App.task`'s). Returns the task as the current App knows it."""

    def declare(func: Callable[..., Any]) -> Task[Any, Any]:
        task_name = name or f"{func.__module__}.{func.__qualname__}"
        with _lock:
            _declared.append((func, task_name, dict(options)))
            apps = list(_apps)
        for app in apps:
            _bind(app, func, task_name, options)
        return SharedTask(func, task_name, options)

    return declare(fn) if fn is not None else declare


__all__ = ["SharedTask", "current_app", "set_current", "shared_task"]
