"""eventlet's monkey-patching, once and early (`kernel.plugin.Patcher`), and what is known
about the installed eventlet.

Eventlet warns, as it is imported, that it is deprecated (``EventletDeprecationWarning``, a
plain `Warning`: under ``python -W error`` the import itself fails). kernel imports it through
`import_eventlet`, with that one warning ignored, and says what to move to in its docs and in
the banner's caveat instead.
"""

from __future__ import annotations

import re
import sys
import warnings
from types import ModuleType

from kernel.plugin import Patcher

#: (Python, the first eventlet release that works on it), from eventlet's release notes.
FIRST_WORKING = {(3, 10): (0, 33, 3), (3, 11): (0, 33, 3), (3, 12): (0, 35, 0),
                 (3, 13): (0, 38, 0), (3, 14): (0, 41, 0)}
MIGRATE = "eventlet is deprecated upstream: move to -P gevent or -P asyncio"


def import_eventlet() -> ModuleType:
    """``import eventlet``, without its deprecation warning (kernel says what to move to)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
        import eventlet
    module: ModuleType = eventlet
    return module


def release(text: str) -> tuple[int, ...]:
    """``"0.41.3"`` → (0, 41, 3); ``"0.40.0rc1"`` → (0, 40, 0)."""
    found = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", text)
    return tuple(int(part) for part in found.groups() if part is not None) if found else ()


def caveat(installed: str | None = None, python: tuple[int, int] | None = None) -> str | None:
    """Why the installed eventlet is known to misbehave on this Python, if it is."""
    if installed is None:
        installed = import_eventlet().__version__
    python = python or (sys.version_info.major, sys.version_info.minor)
    needed = FIRST_WORKING.get(python)
    if needed is None:
        return (f"eventlet {installed} on Python {python[0]}.{python[1]}: no eventlet release is "
                f"known to work on this Python; {MIGRATE}")
    if release(installed) < needed:
        wanted = ".".join(map(str, needed))
        return (f"eventlet {installed} is known to misbehave on Python {python[0]}.{python[1]} "
                f"(install eventlet>={wanted}); {MIGRATE}")
    return None


def _apply() -> None:
    import_eventlet().monkey_patch()


def _applied() -> bool:
    # Patched by the program itself (eventlet.monkey_patch() before kernel started).
    if "eventlet.patcher" not in sys.modules:
        return False
    return bool(sys.modules["eventlet.patcher"].is_monkey_patched("socket"))


#: ``patch()``: monkey-patch now, or say why it is too late; what it did, for the banner.
patch = Patcher("eventlet", _apply, _applied, caveat)
