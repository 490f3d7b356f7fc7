"""Task signals: the per-message observer hooks (``kernel_task_*``, ``kernel_*_publish``).

Their implementations are collected once per process and called directly, so a signal nobody
listens to costs one empty loop, and none goes through pluggy's relay on the hot path. An
observer that raises is logged and skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pluggy

log = logging.getLogger("kernel")

SIGNALS = (
    "kernel_before_publish",
    "kernel_after_publish",
    "kernel_task_received",
    "kernel_task_prerun",
    "kernel_task_postrun",
    "kernel_task_success",
    "kernel_task_failure",
    "kernel_task_retry",
    "kernel_task_revoked",
)


class Signals:
    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._receivers: dict[str, list[tuple[Callable[..., Any], tuple[str, ...]]]] = {
            name: [(impl.function, tuple(impl.argnames))
                   for impl in getattr(pm.hook, name).get_hookimpls()]
            for name in SIGNALS
        }

    def wanted(self, name: str) -> bool:
        return bool(self._receivers[name])

    def send(self, name: str, **kwargs: Any) -> None:
        for fn, argnames in self._receivers[name]:
            try:
                fn(*[kwargs[a] for a in argnames])
            except Exception:  # noqa: BLE001 - an observer never breaks the task
                log.exception("receiver %s of %s failed", getattr(fn, "__qualname__", fn), name)
