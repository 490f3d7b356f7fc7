"""gevent's monkey-patching, once and early (`kernel.plugin.Patcher`)."""

from __future__ import annotations

import sys

from kernel.plugin import Patcher


def _apply() -> None:
    from gevent import monkey

    monkey.patch_all()


def _applied() -> bool:
    # Patched by the program itself (gevent.monkey.patch_all(), python -m gevent.monkey).
    if "gevent.monkey" not in sys.modules:
        return False
    from gevent import monkey

    return bool(monkey.is_module_patched("socket"))


#: ``patch()``: monkey-patch now, or say why it is too late; what it did, for the banner.
patch = Patcher("gevent", _apply, _applied)
