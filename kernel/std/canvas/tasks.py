"""The built-in tasks every Celery worker registers (std plugin ``canvas``), so a canvas a
Celery client sends runs here: ``celery.chord_unlock`` (chords on stores that cannot count),
``celery.map``, ``celery.starmap``, ``celery.chunks``, ``celery.group``, ``celery.chain``,
``celery.chord`` and ``celery.accumulate`` (what a group replacing a task collects into); and
``celery.backend_cleanup``, which Celery beat runs to delete expired results."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kernel.app import App
    from kernel.task import Task


def register_builtins(app: App) -> None:
    from kernel.canvas import Publisher, chunks, signature

    def _run(sig: Mapping[str, Any], args: Sequence[Any]) -> str | None:
        return signature(sig, app).run(args, {}, Publisher(app)).id

    @app.task(name="celery.chord_unlock", bind=True, max_retries=None)
    def chord_unlock(self: Task[Any, Any], group_id: str, callback: dict[str, Any],
                     interval: float | None = None, max_retries: int | None = None,
                     result: Sequence[Any] = (), **_: Any) -> None:
        from kernel.std.canvas.chords import unlock  # the worker's side, only where it runs

        request = self.request
        lineage = {"parent_id": request.id, "root_id": request.root_id or request.id}
        if not unlock(app, group_id, callback, result, lineage):
            raise self.retry(countdown=interval or app.conf.result_chord_retry_interval,
                             max_retries=max_retries)

    @app.task(name="celery.backend_cleanup")
    def backend_cleanup() -> None:
        # What Celery beat runs daily where the result store needs it (a SQL table).
        app.backend.cleanup()

    @app.task(name="celery.map")
    def xmap(task: dict[str, Any], it: Iterable[Any]) -> list[Any]:
        found = app.tasks[signature(task, app).name]
        return [found.run([item], {}) for item in it]

    @app.task(name="celery.starmap")
    def xstarmap(task: dict[str, Any], it: Iterable[Sequence[Any]]) -> list[Any]:
        found = app.tasks[signature(task, app).name]
        return [found.run(list(item), {}) for item in it]

    @app.task(name="celery.chunks")
    def chunks_task(task: dict[str, Any], it: Iterable[Sequence[Any]], n: int) -> str | None:
        return _run(chunks(task, it, n, app=app), ())

    @app.task(name="celery.group")
    def group_task(tasks: Sequence[dict[str, Any]], result: Any = None,
                   group_id: str | None = None, partial_args: Sequence[Any] = (),
                   **_: Any) -> str | None:
        return _run({"task": "celery.group", "subtask_type": "group",
                     "kwargs": {"tasks": tasks}}, partial_args)

    @app.task(name="celery.chain")
    def chain_task(tasks: Sequence[dict[str, Any]], *partial_args: Any,
                   **_: Any) -> str | None:
        return _run({"task": "celery.chain", "subtask_type": "chain",
                     "kwargs": {"tasks": tasks}}, partial_args)

    @app.task(name="celery.chord")
    def chord_task(header: dict[str, Any], body: dict[str, Any],
                   partial_args: Sequence[Any] = (), **_: Any) -> str | None:
        return _run({"task": "celery.chord", "subtask_type": "chord",
                     "kwargs": {"header": header, "body": body}}, partial_args)

    @app.task(name="celery.accumulate")
    def accumulate(*args: Any, index: int | None = None, **_: Any) -> Any:
        return args[index] if index is not None else list(args)
