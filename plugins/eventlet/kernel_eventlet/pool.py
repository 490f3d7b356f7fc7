"""The eventlet pool: `kernel.greenpool.GreenPool` on eventlet's green threads and hub."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import greenlet

from kernel.plugin import GreenLibrary, GreenPool
from kernel_eventlet.patching import import_eventlet, patch
from kernel_eventlet.plugin import CAPABILITIES

eventlet = import_eventlet()
from eventlet import hubs  # noqa: E402 - once eventlet is imported without its warning


class Eventlet(GreenLibrary):
    name = "eventlet"

    def spawn(self, fn: Callable[[], None]) -> Any:
        return eventlet.spawn(fn)

    def call_later(self, seconds: float, fn: Callable[[], None]) -> Callable[[], None]:
        timer = hubs.get_hub().schedule_call_global(max(seconds, 0.0), fn)
        cancel: Callable[[], None] = timer.cancel
        return cancel

    def current(self) -> Any:
        return greenlet.getcurrent()

    def patch(self) -> str:
        return patch()


class EventletPool(GreenPool):
    """``-P eventlet``: up to `concurrency` green threads run jobs at once."""

    capabilities = CAPABILITIES
    library = Eventlet()
