"""Signatures: a task name with arguments and options, in Celery's dict form so it can ride in a
message's embed (callbacks, errbacks, chain) unchanged.

Composite primitives (chain, group, chord, ...) arrive with the canvas issue; the worker already
runs the plain forms a Celery client sends: ``link``, ``link_error`` and ``chain``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kernel.app import App
    from kernel.result import AsyncResult


_CALL_OPTIONS = frozenset({
    "task_id", "countdown", "eta", "expires", "queue", "priority", "headers", "serializer",
    "compression", "time_limit", "soft_time_limit", "ignore_result", "link", "link_error",
    "shadow", "parent_id", "root_id", "group_id", "group_index", "retries", "chain", "chord",
    "reply_to",
})


class Signature(dict[str, Any]):
    """``{"task", "args", "kwargs", "options", "subtask_type", "immutable"}``."""

    def __init__(
        self,
        task: str,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        *,
        immutable: bool = False,
        subtask_type: str | None = None,
        app: App | None = None,
    ) -> None:
        super().__init__(
            task=task,
            args=list(args),
            kwargs=dict(kwargs or {}),
            options=dict(options or {}),
            subtask_type=subtask_type,
            immutable=immutable,
        )
        self.app = app

    @classmethod
    def from_dict(cls, data: dict[str, Any], app: App | None = None) -> Signature:
        return cls(
            data["task"], data.get("args") or (), data.get("kwargs"), data.get("options"),
            immutable=bool(data.get("immutable")), subtask_type=data.get("subtask_type"), app=app,
        )

    @property
    def name(self) -> str:
        return str(self["task"])

    def set(self, *, immutable: bool | None = None, **options: Any) -> Signature:
        """Set calling options (queue, countdown, priority, ...) in place; returns self."""
        if immutable is not None:
            self["immutable"] = immutable
        self["options"].update(options)
        return self

    def clone(self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None,
              **options: Any) -> Signature:
        """A copy with `args` appended (prepended when partial application is Celery's order:
        new args go first only for parent results, see `apply_async`)."""
        merged_kwargs = {**self["kwargs"], **(kwargs or {})}
        sig = Signature(self.name, [*self["args"], *args], merged_kwargs,
                        {**self["options"], **options}, immutable=self["immutable"],
                        subtask_type=self["subtask_type"], app=self.app)
        return sig

    def link(self, callback: Signature) -> Signature:
        self["options"].setdefault("link", []).append(callback)
        return callback

    def link_error(self, errback: Signature) -> Signature:
        self["options"].setdefault("link_error", []).append(errback)
        return errback

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult[Any]:
        return self.apply_async(args, kwargs)

    def apply_async(self, args: tuple[Any, ...] | list[Any] = (),
                    kwargs: Mapping[str, Any] | None = None, **options: Any) -> AsyncResult[Any]:
        """Send: `args` go before the signature's own (a parent's result comes first), unless
        the signature is immutable."""
        if self.app is None:
            raise RuntimeError(f"signature {self.name!r} is not bound to an app; build it with "
                               f"task.s() or pass app=")
        call_args = list(self["args"]) if self["immutable"] else [*args, *self["args"]]
        call_kwargs = {**self["kwargs"], **(kwargs or {})} if not self["immutable"] else dict(
            self["kwargs"])
        opts = {**self["options"], **options}
        if "queue" not in opts and opts.get("routing_key"):
            opts["queue"] = opts["routing_key"]
        # Signatures from Celery clients carry options kernel has no use for (exchange, ...).
        known = {k: v for k, v in opts.items() if k in _CALL_OPTIONS}
        return self.app.send_task(self.name, call_args, call_kwargs, **known)
