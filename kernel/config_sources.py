"""Where settings come from besides code: objects and modules (``config_from_object``),
``KERNEL_``-prefixed environment variables, and Celery's names for them, old and new."""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches
from types import UnionType
from typing import Any, Union, get_args, get_origin

from kernel.celery_names import IGNORED, OLD_NAMES, RENAMED
from kernel.errors import ConfigurationError, KernelError

log = logging.getLogger("kernel.config")

#: the prefix of the environment variables that carry settings: KERNEL_BROKER_URL.
ENV_PREFIX = "KERNEL_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
#: names already warned about in this process: a warning once, not at every rebuild.
_warned: set[str] = set()


def kernel_name(name: str, known: Mapping[str, Any]) -> str | None:
    """The kernel setting `name` means: itself, or what Celery renamed it to (with one
    deprecation line for an old upper-case name); None for a Celery setting kernel ignores on
    purpose (one warning line saying why). Unknown names are returned as they are."""
    if name in known:
        return name
    new = OLD_NAMES.get(name)
    if new is not None:
        target = RENAMED.get(new, new)
        if name not in _warned and (target in known or new in IGNORED):
            _warned.add(name)
            also = f" (kernel's {target})" if target != new else ""
            log.warning("setting %s is Celery's old name for %s%s: write that", name, new, also)
        name = new
    name = RENAMED.get(name, name)
    if name not in known and name in IGNORED:
        if name not in _warned:
            _warned.add(name)
            log.warning("setting %s is ignored: %s", name, IGNORED[name])
        return None
    return name


def celery_setting(name: str) -> bool:
    """Whether `name` is a Celery setting (old or new spelling)."""
    return name in OLD_NAMES or name in set(OLD_NAMES.values()) or name in IGNORED


# ------------------------------------------------------------------------------ environment


def settings_from_env(hints: Mapping[str, Any],
                      environ: Mapping[str, str] | None = None) -> dict[str, tuple[Any, str]]:
    """``KERNEL_<NAME>`` for every setting in `hints` (name: type), converted to the type:
    numbers, booleans (1/0, true/false, yes/no, on/off), lists (JSON, or comma-separated),
    dicts (JSON); an empty value is None where None is allowed. Returns name: (value, variable)."""
    environ = os.environ if environ is None else environ
    found: dict[str, tuple[Any, str]] = {}
    for name, hint in hints.items():
        var = ENV_PREFIX + name.upper()
        if var in environ and (environ[var].strip() or _optional(hint)):
            found[name] = (parse_env(var, environ[var], hint), var)
    return found


def _optional(hint: Any) -> bool:
    return get_origin(hint) in (Union, UnionType) and type(None) in get_args(hint)


def parse_env(var: str, text: str, hint: Any) -> Any:
    """`text` of variable `var` as a value of type `hint`; a sentence if it cannot be one."""
    options = list(get_args(hint)) if get_origin(hint) in (Union, UnionType) else [hint]
    if not text.strip() and (type(None) in options or None in options):
        return None
    for option in options:
        if option is None or option is type(None):
            continue
        try:
            return _convert(text.strip(), option)
        except ValueError:
            continue
    wanted = " or ".join(_kind(o) for o in options if o is not None and o is not type(None))
    raise ConfigurationError(f"environment variable {var}={text!r} is not {wanted}; set it to "
                             f"{wanted} or unset it")


def _convert(text: str, hint: Any) -> Any:
    origin = get_origin(hint) or hint
    if hint is Any:
        return json.loads(text) if text[:1] in "[{\"" else text
    if hint is bool:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ValueError(text)
    if hint is int:
        return int(text)
    if hint is float:
        return float(text)
    if hint is str:
        return text
    if origin in (tuple, list):
        if text.startswith("["):
            value = json.loads(text)
            if not isinstance(value, list):
                raise ValueError(text)
            return tuple(value) if origin is tuple else value
        parts = [part.strip() for part in text.split(",") if part.strip()]
        return tuple(parts) if origin is tuple else parts
    if origin is dict:
        value = json.loads(text)
        if not isinstance(value, dict):
            raise ValueError(text)
        return value
    raise ValueError(text)


def _kind(hint: Any) -> str:
    origin = get_origin(hint) or hint
    return {bool: "a boolean (true/false)", int: "an integer", float: "a number",
            str: "a string", tuple: "a list (JSON or comma-separated)",
            list: "a list (JSON or comma-separated)", dict: "a JSON object"}.get(
                origin, "a JSON value")


# ------------------------------------------------------------------------------ objects


def settings_from_object(source: Any, namespace: str | None = None) -> dict[str, Any]:
    """The settings an object holds, as `Config.from_mapping` takes them: what
    ``App.config_from_object`` reads.

    `source` is a mapping, an object or module (its attributes), or a string naming one:
    ``"proj.settings"`` (a module), ``"django.conf:settings"`` or ``"proj.conf.Settings"`` (an
    attribute of a module). Celery's rule for names: with a `namespace` (``"CELERY"``), the
    settings are the names that start with ``CELERY_``, less that prefix, lower-cased
    (``CELERY_BROKER_URL`` is ``broker_url``); without one, the public names that are not
    modules, classes or functions: lower-case ones, and Celery's old upper-case ones
    (``BROKER_URL``, ``CELERY_RESULT_BACKEND``); other upper-case names are left alone as
    constants."""
    what = source if isinstance(source, str) else getattr(source, "__name__", type(source)
                                                          .__name__)
    if isinstance(source, str):
        source = import_object(source)
    try:
        if isinstance(source, Mapping):
            items = list(source.items())
        else:
            items = [(name, getattr(source, name)) for name in dir(source)]
    except KernelError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the object raises, one sentence
        raise ConfigurationError(f"cannot read settings from {what}: {exc}") from None
    found: dict[str, Any] = {}
    if namespace:
        prefix = namespace.rstrip("_") + "_"
        for name, value in items:
            if isinstance(name, str) and name.startswith(prefix) and name[len(prefix):]:
                found[name[len(prefix):].lower()] = value
        return found
    for name, value in items:
        if (isinstance(name, str) and not name.startswith("_")
                and (name == name.lower() or name in OLD_NAMES)
                and not inspect.ismodule(value) and not inspect.isclass(value)
                and not inspect.isroutine(value)):
            found[name] = value
    return found


def import_object(spec: str) -> Any:
    """``module``, ``module:attr`` or ``module.attr``: what the name points to. A module that
    is not there, or that raises as it is imported, is one sentence naming it."""
    module_name, _, attr = spec.partition(":")
    try:
        if attr:
            return _attribute(importlib.import_module(module_name), attr, spec)
        try:
            return importlib.import_module(spec)
        except ModuleNotFoundError as exc:
            parent, _, name = spec.rpartition(".")
            if not parent or exc.name != spec:
                raise
            return _attribute(importlib.import_module(parent), name, spec)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import the configuration {spec!r}: {exc}; check "
                                 f"the name and that it is on the Python path") from None
    except KernelError:
        raise
    except Exception as exc:  # noqa: BLE001 - the module's own error, as one sentence
        raise ConfigurationError(f"the configuration {spec!r} raised {type(exc).__name__} "
                                 f"while it was imported: {exc}; fix that module") from None


def _attribute(module: Any, name: str, spec: str) -> Any:
    try:
        return getattr(module, name)
    except AttributeError:
        raise ConfigurationError(f"the configuration {spec!r} names {name!r}, which "
                                 f"{module.__name__} does not define") from None


# ------------------------------------------------------------------------------ App(...)


@dataclass
class CeleryKeywords:
    """What Celery's constructor keywords given to ``App(...)`` ask for."""

    main: str | None = None
    backend: str | None = None
    namespace: str | None = None
    task_cls: Any = None
    config_source: Any = None
    set_as_current: bool = True
    #: settings given as keywords (``broker_url=...``), ``include`` and ``changes``.
    settings: dict[str, Any] = field(default_factory=dict)


#: Celery's keywords that replace parts of Celery itself, which kernel builds from plugins.
_INTERNALS = ("loader", "amqp", "events", "log", "control", "tasks", "fixups")
#: Celery's keywords kernel takes and has no use for.
_NO_EFFECT = ("autofinalize", "strict_typing")


def celery_keywords(given: Mapping[str, Any], known: Iterable[str] = ()) -> CeleryKeywords:
    """Celery's ``Celery(...)`` keywords as kernel's App takes them: ``main``, ``backend``
    (kernel's ``results``), ``include``, ``config_source``, ``namespace``, ``task_cls``,
    ``set_as_current``, ``changes`` and settings by name; ``autofinalize`` and
    ``strict_typing`` have no effect. Anything else is a sentence."""
    out = CeleryKeywords()
    for key, value in given.items():
        if key in ("main", "backend", "namespace", "task_cls", "config_source"):
            setattr(out, key, value)
        elif key == "set_as_current":
            out.set_as_current = bool(value)
        elif key == "include":
            out.settings["include"] = [value] if isinstance(value, str) else list(value or ())
        elif key == "changes":
            out.settings.update(value or {})
        elif key in _NO_EFFECT:
            continue
        elif key in _INTERNALS:
            raise ConfigurationError(
                f"App({key}=...) replaces a part of Celery itself; kernel builds that part "
                f"from plugins, so drop the argument (docs/plugin-authoring.md says how to "
                f"change it with a plugin)")
        elif key in known or celery_setting(key):
            out.settings[key] = value  # checked with the other settings
        else:
            close = get_close_matches(key, [*known, "main", "backend", "include",
                                            "config_source", "namespace", "task_cls"], n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigurationError(
                f"App() got an unexpected keyword {key!r}; {hint}it takes kernel's (broker, "
                f"results, plugins, config, autoload, disable), Celery's (main, backend, "
                f"include, config_source, namespace, task_cls, set_as_current, changes) "
                f"and settings by name")
    return out

