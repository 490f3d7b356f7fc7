"""The gevent pool: `kernel.greenpool.GreenPool` on gevent's greenlets and hub."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gevent

from kernel.plugin import GreenLibrary, GreenPool
from kernel_gevent.patching import patch
from kernel_gevent.plugin import CAPABILITIES


class Gevent(GreenLibrary):
    name = "gevent"

    def spawn(self, fn: Callable[[], None]) -> Any:
        return gevent.spawn(fn)

    def call_later(self, seconds: float, fn: Callable[[], None]) -> Callable[[], None]:
        timer = gevent.get_hub().loop.timer(max(seconds, 0.0))
        timer.start(fn)
        close: Callable[[], None] = timer.close
        return close

    def current(self) -> Any:
        return gevent.getcurrent()

    def patch(self) -> str:
        return patch()


class GeventPool(GreenPool):
    """``-P gevent``: up to `concurrency` greenlets run jobs at once."""

    capabilities = CAPABILITIES
    library = Gevent()
