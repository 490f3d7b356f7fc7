"""Plugin discovery, registration, failure isolation and listing.

Load order: plugins given to `App(plugins=[...])`, then entry points of the ``kernel.plugins``
group (unless autoload is off). The std plugins shipped with kernel come through the very same
entry points. A plugin that fails to import or to register is recorded as failed and skipped;
only selecting a capability it would have provided is fatal.

Controls: ``KERNEL_PLUGIN_AUTOLOAD=0`` turns entry-point loading off; ``KERNEL_DISABLE_PLUGINS``
(comma-separated) and ``-p no:NAME`` disable plugins by entry-point or distribution name.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import get_close_matches
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType
from typing import Any, Generic, TypeVar

import pluggy

from kernel import hookspecs
from kernel.distributions import PROVIDERS
from kernel.errors import CapabilityNotFound, PluginConflictError, PluginError
from kernel.specs import (
    BootstepSpec,
    CompressorSpec,
    MiddlewareSpec,
    PoolSpec,
    RateLimitStoreSpec,
    ResultStoreSpec,
    ScheduleStoreSpec,
    SerializerSpec,
    SettingSpec,
    SignerSpec,
    TransportSpec,
)

ENTRY_POINT_GROUP = "kernel.plugins"

#: registration hook → the kind of record it returns (used in listings and error messages).
REGISTRATION_HOOKS: Mapping[str, str] = MappingProxyType(
    {
        "kernel_transports": "transport",
        "kernel_result_stores": "result store",
        "kernel_serializers": "serializer",
        "kernel_compressors": "compressor",
        "kernel_signers": "signer",
        "kernel_pools": "pool",
        "kernel_schedule_stores": "schedule store",
        "kernel_rate_limit_stores": "rate-limit store",
        "kernel_bootsteps": "bootstep",
        "kernel_middleware": "middleware",
        "kernel_settings": "setting",
    }
)

S = TypeVar("S")


@dataclass
class PluginInfo:
    """One plugin as `kernel plugins list` shows it."""

    name: str
    distribution: str | None = None
    version: str | None = None
    status: str = "ok"  # ok | failed | disabled
    error: str | None = None
    provides: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "error": self.error,
            "provides": self.provides,
        }


@dataclass(frozen=True)
class Hints:
    """What a registry needs to explain a miss: which plugins failed (name → error), which are
    disabled (entry-point and distribution names), and whether entry points were read."""

    failed: Mapping[str, str] = field(default_factory=dict)
    disabled: frozenset[str] = frozenset()
    autoload: bool = True


class Registry(Generic[S]):
    """An immutable map from a key (scheme or name) to the record that serves it, and which
    plugin registered each."""

    def __init__(self, kind: str, items: Mapping[str, S], owners: Mapping[str, str],
                 hints: Hints) -> None:
        self.kind = kind
        self._items = MappingProxyType(dict(items))
        self._owners = MappingProxyType(dict(owners))
        self._hints = hints

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> Iterable[tuple[str, S]]:
        return self._items.items()

    def values(self) -> Iterable[S]:
        return self._items.values()

    def owner(self, key: str) -> str | None:
        """The name of the plugin that registered `key`."""
        return self._owners.get(key)

    def offered(self, key: str) -> bool:
        """Whether one of kernel's distributions provides `key`, loaded here or not."""
        return key in PROVIDERS.get(self.kind, {})

    def get(self, key: str) -> S:
        """The record for `key`, or `CapabilityNotFound` saying what to do."""
        try:
            return self._items[key]
        except KeyError:
            raise CapabilityNotFound(self.kind, key, self._items, hint=self._explain(key),
                                     failed=self._hints.failed.get(key)) from None

    def _explain(self, key: str) -> str | None:
        """Why `key` is missing, as a sentence: the distribution of ours that provides it is
        switched off, not loaded, or not installed; or none of ours does."""
        hints = self._hints
        known = PROVIDERS.get(self.kind, {}).get(key)
        parts: list[str] = []
        if known is not None:
            entry, dist, extra = known
            if entry in hints.disabled or dist in hints.disabled:
                parts.append(f"the plugin {entry!r} ({dist}) that provides it is switched off; "
                             f"switch it on by dropping -p no:{entry} (or {entry} from "
                             f"KERNEL_DISABLE_PLUGINS / App(disable=...))")
            elif _installed(dist) and not hints.autoload:
                parts.append(f"{dist} is installed but plugins are not loaded from entry points "
                             f"(KERNEL_PLUGIN_AUTOLOAD=0 or App(autoload=False)); turn that on or "
                             f"register it with App(plugins=[...])")
            else:
                parts.append(f"install kernel[{extra}]")
        else:
            parts.append(f"no kernel plugin distribution provides a {self.kind} named {key!r}")
        failed = {n: e for n, e in hints.failed.items() if n != key}
        if failed and key not in hints.failed:
            # a plugin's name need not be the scheme it serves: name every failed one
            broken = ", ".join(f"{n!r} ({e})" for n, e in sorted(failed.items()))
            parts.append(f"these plugins failed to load and may provide it: {broken}")
        return "; ".join(parts)


def _installed(distribution: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(distribution)
    except PackageNotFoundError:
        return False
    return True


def _short_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


@cache
def _entry_points() -> tuple[EntryPoint, ...]:
    return tuple(entry_points(group=ENTRY_POINT_GROUP))


def _env_disabled() -> set[str]:
    return {n.strip() for n in os.environ.get("KERNEL_DISABLE_PLUGINS", "").split(",") if n.strip()}


def _env_autoload() -> bool:
    return os.environ.get("KERNEL_PLUGIN_AUTOLOAD", "1").lower() not in ("0", "false", "no")


class PluginManager:
    """Loads plugins and builds the registries an App uses."""

    def __init__(
        self,
        plugins: Sequence[object] = (),
        *,
        autoload: bool | None = None,
        disabled: Iterable[str] = (),
    ) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.autoload = _env_autoload() if autoload is None else autoload
        self.disabled = set(disabled) | _env_disabled()
        self._infos: dict[str, PluginInfo] = {}
        self._registries: dict[str, Registry[Any]] | None = None
        for plugin in plugins:
            self.register(plugin)
        if self.autoload:
            self._load_entry_points()

    @property
    def hook(self) -> Any:
        """pluggy's hook relay; plugins whose registration failed are no longer called."""
        self._ensure_collected()
        return self.pm.hook

    # ------------------------------------------------------------------ loading

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a plugin object (a module, class or instance with hook implementations)."""
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        if name in self.disabled:
            self._infos[name] = PluginInfo(name, status="disabled")
            return
        try:
            self._register_checked(plugin, name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise PluginError(f"plugin {name!r} cannot be registered: {exc}") from exc
        self._infos.setdefault(name, PluginInfo(name))
        self._registries = None

    def _load_entry_points(self) -> None:
        for ep in _entry_points():
            dist = ep.dist.name if ep.dist else None
            version = ep.dist.version if ep.dist else None
            info = PluginInfo(ep.name, dist, version)
            self._infos[ep.name] = info
            if ep.name in self.disabled or (dist and dist in self.disabled):
                info.status = "disabled"
                continue
            if self.pm.has_plugin(ep.name):
                continue
            try:
                self._register_checked(ep.load(), ep.name)
            except Exception as exc:  # noqa: BLE001 - isolation: any import error is reported
                info.status, info.error = "failed", _short_error(exc)
                info.provides = {}

    def _register_checked(self, plugin: object, name: str) -> None:
        """Register, refusing hook implementations whose name is not a kernel hook: pluggy would
        accept a misspelt ``kernel_transport`` and never call it."""
        self.pm.register(plugin, name=name)
        unknown = sorted(
            caller.name for caller in self.pm.get_hookcallers(plugin) or ()
            if caller.spec is None and any(
                impl.plugin is plugin and not impl.optionalhook
                for impl in caller.get_hookimpls()))
        if unknown:
            self.pm.unregister(plugin)
            known = [n for n in dir(hookspecs) if n.startswith("kernel_")]
            hints = [f"{n!r} (did you mean {m[0]!r}?)" if (m := get_close_matches(n, known, 1))
                     else repr(n) for n in unknown]
            raise pluggy.PluginValidationError(
                plugin, f"unknown hook {', '.join(hints)}; the hooks are listed in "
                        f"kernel.hookspecs")

    # ------------------------------------------------------------------ registries

    def _ensure_collected(self) -> dict[str, Registry[Any]]:
        if self._registries is None:
            self._registries = self._collect()
        return self._registries

    def _collect(self) -> dict[str, Registry[Any]]:
        """Call every registration hook plugin by plugin, so one broken plugin is isolated and
        every record is attributed to the plugin that returned it."""
        for info in self._infos.values():
            if info.status == "ok":
                info.provides = {}
        per_plugin: dict[str, list[Any]] = {}
        for hook_name in REGISTRATION_HOOKS:
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                records = per_plugin.setdefault(impl.plugin_name, [])
                if records is None:
                    continue
                try:
                    records.extend(impl.function() or ())
                except Exception as exc:  # noqa: BLE001 - isolation
                    info = self._infos.setdefault(impl.plugin_name, PluginInfo(impl.plugin_name))
                    info.status = "failed"
                    info.error = f"{hook_name} raised {_short_error(exc)}"
                    info.provides = {}
                    per_plugin[impl.plugin_name] = None  # type: ignore[assignment]
                    # isolated for good: none of its other hooks are called either
                    self.pm.unregister(name=impl.plugin_name)
                    if os.environ.get("KERNEL_DEBUG_PLUGINS"):
                        traceback.print_exc()
        items: dict[str, dict[str, Any]] = {kind: {} for kind in REGISTRATION_HOOKS.values()}
        owners: dict[tuple[str, str], str] = {}
        self._check_settings(per_plugin)
        for plugin_name, records in per_plugin.items():
            if records is None:
                continue
            info = self._infos.setdefault(plugin_name, PluginInfo(plugin_name))
            for record in records:
                kind = record.kind
                for key in record.keys:
                    other = owners.get((kind, key))
                    if other is not None and other != plugin_name:
                        raise PluginConflictError(
                            kind, key, self._describe(other), self._describe(plugin_name)
                        )
                    owners[(kind, key)] = plugin_name
                    items[kind][key] = record
                keys = "" if record.keys == (record.name,) else f" ({', '.join(record.keys)})"
                info.provides.setdefault(kind, []).append(f"{record.name}{keys}")
        hints = Hints(
            failed={i.name: i.error or "" for i in self._infos.values() if i.status == "failed"},
            disabled=frozenset(self.disabled), autoload=self.autoload)
        return {kind: Registry(kind, found,
                               {key: owner for (k, key), owner in owners.items() if k == kind},
                               hints)
                for kind, found in items.items()}

    def _describe(self, plugin_name: str) -> str:
        info = self._infos.get(plugin_name)
        if info and info.distribution:
            return f"plugin {plugin_name!r} (distribution {info.distribution})"
        return f"plugin {plugin_name!r}"

    def _check_settings(self, per_plugin: Mapping[str, list[Any] | None]) -> None:
        """A plugin setting may not take a name kernel's own configuration has."""
        from kernel.config import Config

        own = Config.names()
        for plugin_name, records in per_plugin.items():
            for record in records or ():
                if isinstance(record, SettingSpec) and record.name in own:
                    raise PluginError(f"{self._describe(plugin_name)} declares the setting "
                                      f"{record.name!r}, which is kernel's own; rename it")

    def _registry(self, kind: str) -> Registry[Any]:
        return self._ensure_collected()[kind]

    def keys_of(self, plugin: str) -> dict[str, tuple[str, ...]]:
        """What the plugin named `plugin` registered: kind → its keys (schemes, names)."""
        return {kind: keys for kind, registry in self._ensure_collected().items()
                if (keys := tuple(sorted(k for k in registry if registry.owner(k) == plugin)))}

    # Typed accessors: one per kind of record.

    @property
    def transports(self) -> Registry[TransportSpec]:
        return self._registry("transport")

    @property
    def result_stores(self) -> Registry[ResultStoreSpec]:
        return self._registry("result store")

    @property
    def serializers(self) -> Registry[SerializerSpec]:
        return self._registry("serializer")

    @property
    def compressors(self) -> Registry[CompressorSpec]:
        return self._registry("compressor")

    @property
    def signers(self) -> Registry[SignerSpec]:
        return self._registry("signer")

    @property
    def pools(self) -> Registry[PoolSpec]:
        return self._registry("pool")

    @property
    def schedule_stores(self) -> Registry[ScheduleStoreSpec]:
        return self._registry("schedule store")

    @property
    def rate_limit_stores(self) -> Registry[RateLimitStoreSpec]:
        return self._registry("rate-limit store")

    @property
    def bootsteps(self) -> Registry[BootstepSpec]:
        return self._registry("bootstep")

    @property
    def middleware(self) -> Registry[MiddlewareSpec]:
        return self._registry("middleware")

    @property
    def settings(self) -> Registry[SettingSpec]:
        return self._registry("setting")

    def infos(self) -> list[PluginInfo]:
        """Every plugin seen, loaded or not, sorted by name."""
        self._ensure_collected()
        return sorted(self._infos.values(), key=lambda i: i.name)
