"""Finding an App from a ``module:attribute`` string (``-A``), in the CLI and in pool children."""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING

from kernel.errors import ConfigurationError

if TYPE_CHECKING:
    from kernel.app import App

_loaded: dict[str, App] = {}


def load_app(spec: str) -> App:
    """Import ``module:attr`` (or ``module``, taking its ``app``) and return the App there."""
    found = _loaded.get(spec)
    if found is not None:
        return found
    from kernel.app import App

    module_name, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"cannot import {module_name!r} for -A {spec}: {exc}; run from the directory that "
            f"contains it or put it on PYTHONPATH") from None
    obj = getattr(module, attr or "app", None)
    if not isinstance(obj, App):
        candidates = [n for n, v in vars(module).items() if isinstance(v, App)]
        hint = f"; found {', '.join(candidates)}" if candidates else ""
        raise ConfigurationError(f"{spec!r} is not a kernel App{hint}")
    obj.import_spec = f"{module_name}:{attr or 'app'}"
    _loaded[spec] = obj
    return obj
