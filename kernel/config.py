"""Settings, with their defaults and the check that turns a typo into a sentence."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches
from functools import cache
from types import UnionType
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin, get_type_hints

from kernel.errors import ConfigurationError, KernelError
from kernel.parsing import mask_url
from kernel.schedules import resolve_timezone

if TYPE_CHECKING:
    from kernel.specs import SettingSpec

DEFAULT_URL = "sqlite:///kernel.db"


@dataclass
class Config:
    """Every setting kernel reads. Names follow Celery's lowercase settings where one exists."""

    #: where task messages go; the embedded SQLite default needs no server.
    broker_url: str = DEFAULT_URL
    #: where results go; None disables results.
    result_backend: str | None = DEFAULT_URL
    transport_options: dict[str, Any] = field(default_factory=dict)
    result_backend_options: dict[str, Any] = field(default_factory=dict)
    #: where global rate limits keep their shared token buckets; None: the result backend's URL.
    rate_limit_store: str | None = None

    task_serializer: str = "json"
    result_serializer: str = "json"
    #: serializers (names or content types) a worker decodes; pickle must be added explicitly.
    accept_content: tuple[str, ...] = ("json",)
    task_compression: str | None = None
    #: a body (serialized) shorter than this many bytes is sent uncompressed, without a
    #: ``compression`` header; 0 compresses every body, as Celery does.
    task_compression_min_bytes: int = 0
    #: compressors (names or ``compression`` headers) a worker decompresses; None: every one
    #: installed, as Celery does.
    accept_compression: tuple[str, ...] | None = None

    task_default_queue: str = "celery"
    task_default_priority: int = 0
    task_acks_late: bool = True
    #: a task whose process died is given back to the broker (at-least-once), not failed.
    task_reject_on_worker_lost: bool = True
    #: after this many deliveries a message goes to the dead-letter queue instead of running.
    task_max_deliveries: int = 10
    task_time_limit: float | None = None
    task_soft_time_limit: float | None = None
    task_ignore_result: bool = False
    task_track_started: bool = False
    #: write a PENDING record when a task is sent, so a result tells PENDING (sent, waiting)
    #: from UNKNOWN (never heard of); one result-store write per send (batched in send_many).
    task_track_sent: bool = True
    #: run tasks inline in `delay` (tests); results are kept in memory.
    task_always_eager: bool = False
    task_eager_propagates: bool = True
    result_expires: float | None = 86400.0
    #: result extended records (name, args, kwargs, worker, retries, queue), as Celery's option.
    result_extended: bool = False
    #: seconds between the checks of ``celery.chord_unlock``, the chord fallback for result
    #: stores that cannot count.
    result_chord_retry_interval: float = 1.0
    #: a worker that cannot reach the result store keeps the result and retries storing it
    #: (Celery's names; Celery's default is not to retry): with backoff from the base to the
    #: max sleep, up to max_retries times (None: until the worker stops). Meanwhile the message
    #: stays leased; if the worker gives up, the message goes back to the broker unacked.
    result_backend_always_retry: bool = True
    result_backend_max_retries: int | None = None
    result_backend_base_sleep_between_retries_ms: int = 10
    result_backend_max_sleep_between_retries_ms: int = 10_000

    worker_pool: str = "prefork"
    worker_concurrency: int = 0  # 0: the number of CPUs
    #: messages held per pool slot (prefetch = concurrency x multiplier).
    worker_prefetch_multiplier: int = 4
    #: seconds of work per pool slot a worker may prefetch beyond the multiplier when tasks are
    #: short (measured), up to 32 messages a slot; 0 holds exactly concurrency x multiplier.
    worker_prefetch_budget: float = 0.05
    worker_max_tasks_per_child: int | None = None
    worker_max_memory_per_child: int | None = None  # KiB
    #: seconds a warm shutdown waits for running tasks before giving them back.
    worker_shutdown_timeout: float = 30.0
    #: seconds a fetched message stays leased; the worker renews it every third of that.
    worker_lease_seconds: float = 30.0
    #: task events (task-received ... task-succeeded) from workers; `-E` and the remote
    #: `enable_events` command switch them on at run time. Worker events are always sent.
    worker_send_task_events: bool = False
    #: a task-sent event from the client for every task it sends.
    task_send_sent_event: bool = False
    #: seconds between two worker-heartbeat events (Celery's 2.0; receivers count a worker
    #: gone after twice this without one).
    worker_heartbeat_interval: float = 2.0
    #: workers answer remote-control commands (inspect, control; Flower's buttons).
    worker_enable_remote_control: bool = True
    #: the remote ``pool_restart`` command replaces a process pool's processes (Celery's
    #: setting: off by default, a restart loses nothing but takes the pool's warm-up again).
    worker_pool_restarts: bool = False
    #: the exchange events go on (Celery's ``celeryev``).
    event_exchange: str = "celeryev"
    #: the remote-control namespace: commands on ``<it>.pidbox``, replies on
    #: ``reply.<it>.pidbox`` (Celery's ``celery``).
    control_exchange: str = "celery"
    #: seconds a send may spend reaching an unreachable broker (connecting, retrying) before it
    #: raises `kernel.errors.ConnectionFailed`; given to transports as option
    #: ``connection_timeout``.
    broker_connection_timeout: float = 4.0
    #: a worker that lost its broker keeps trying to reach it again (Celery's name); False:
    #: it stops (exit status 1), for a supervisor to start a fresh one.
    broker_connection_retry: bool = True
    #: attempts to reach the broker before a worker gives up (at start-up, and after losing
    #: it); 0 or None: forever. The attempts come with a doubling pause, from 1 s to 5 s.
    broker_connection_max_retries: int | None = 100
    #: a worker whose broker cannot be reached when it starts keeps trying (False: it exits at
    #: once with a sentence); None: as ``broker_connection_retry``.
    broker_connection_retry_on_startup: bool | None = None

    #: the zone crontab and solar schedules are read in (an IANA name); beat refuses to start
    #: with a name it does not know.
    timezone: str = "UTC"
    #: periodic tasks: ``{name: {"task", "schedule", "args", "kwargs", "options"}}``, as
    #: Celery's; see docs/user-guide/periodic-tasks.md.
    beat_schedule: dict[str, Any] = field(default_factory=dict)
    #: where beat keeps its lease, entries and tick state (a URL); None: the broker's URL where
    #: its plugin has a schedule store, else the SQLite file ``kernel.db``.
    beat_schedule_store: str | None = None
    #: options for the schedule store's plugin (kernel-redis: ``schedule_key``, the key prefix
    #: of one beat group).
    beat_schedule_store_options: dict[str, Any] = field(default_factory=dict)
    #: seconds beat sleeps at most between two looks at the schedule: dynamic changes are seen
    #: within it.
    beat_max_loop_interval: float = 5.0
    #: seconds the leader's lease lasts unless renewed (every third of it): another beat
    #: process takes over this long after the leader died.
    beat_lease_ttl: float = 3.0
    #: a tick found due more than this many seconds late (after a failover or an outage) is
    #: skipped rather than sent; None: sent once, late.
    beat_cron_starting_deadline: float | None = None
    #: run the beat service inside the worker (``kernel worker -B``).
    worker_beat: bool = False

    #: plugins' settings (declared with `kernel.specs.SettingSpec`), by name.
    plugin_settings: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def names(cls) -> frozenset[str]:
        """kernel's own setting names."""
        return frozenset(f.name for f in dataclasses.fields(cls)) - {"plugin_settings"}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None = None, *,
                     plugin_settings: Iterable[SettingSpec] = (), **overrides: Any) -> Config:
        """Defaults, then ``KERNEL_BROKER_URL`` / ``KERNEL_RESULT_BACKEND``, then `values`, then
        `overrides`. Names are kernel's own settings or those plugins declare
        (`plugin_settings`); an unknown name is an error that suggests the closest one, and a
        value of the wrong type an error naming the type wanted."""
        merged: dict[str, Any] = {}
        env = {"broker_url": "KERNEL_BROKER_URL", "result_backend": "KERNEL_RESULT_BACKEND"}
        for key, var in env.items():
            if var in os.environ:
                merged[key] = os.environ[var] or None
        merged.update(values or {})
        merged.update({k: v for k, v in overrides.items() if v is not None})
        for listed in ("accept_content", "accept_compression"):
            if isinstance(merged.get(listed), list):
                merged[listed] = tuple(merged[listed])
        declared = {spec.name: spec for spec in plugin_settings}
        hints = _own_hints()
        own: dict[str, Any] = {}
        plugins = {name: spec.default for name, spec in declared.items()}
        for key, value in merged.items():
            if key in hints:
                _check(key, value, hints[key])
                own[key] = value
            elif key in declared:
                _check(key, value, declared[key].type)
                plugins[key] = value
            else:
                close = get_close_matches(key, [*hints, *declared], n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigurationError(f"unknown setting {key!r}{hint}")
        if "timezone" in own:
            try:
                resolve_timezone(own["timezone"])
            except ValueError as exc:
                raise ConfigurationError(f"setting 'timezone': {exc}") from None
        retries = own.get("broker_connection_max_retries")
        if retries is not None and retries < 0:
            raise ConfigurationError(f"setting 'broker_connection_max_retries' must be 0 or "
                                     f"more (0 or None: retry forever), got {retries!r}")
        for key in ("beat_max_loop_interval", "beat_lease_ttl", "beat_cron_starting_deadline"):
            value = own.get(key)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ConfigurationError(f"setting {key!r} must be a positive number of "
                                         f"seconds, got {value!r}")
        return cls(**own, plugin_settings=plugins)

    def get(self, name: str) -> Any:
        """A setting by name, kernel's own or a plugin's; `ConfigurationError` if neither."""
        if name in self.plugin_settings:
            return self.plugin_settings[name]
        if name in self.names():
            return getattr(self, name)
        raise ConfigurationError(f"unknown setting {name!r}")

    if not TYPE_CHECKING:  # for users (app.conf.s3_bucket); kernel's own code uses get()
        def __getattr__(self, name: str) -> Any:
            settings = self.__dict__.get("plugin_settings", {})
            if name in settings:
                return settings[name]
            raise AttributeError(f"no setting {name!r}")

    def public(self, secrets: Iterable[str] = ()) -> dict[str, Any]:
        """Settings with credentials masked (in URLs, and the values of the plugin settings
        named in `secrets`), for banners, logs and `conf`."""
        out = {name: getattr(self, name) for name in sorted(self.names())}
        for key in ("broker_url", "result_backend", "rate_limit_store", "beat_schedule_store"):
            if out[key]:
                out[key] = mask_url(out[key])
        hidden = set(secrets)
        for key, value in sorted(self.plugin_settings.items()):
            out[key] = "**" if key in hidden and value is not None else (
                mask_url(value) if isinstance(value, str) else value)
        return out


@cache
def _own_hints() -> dict[str, Any]:
    hints = get_type_hints(Config)
    hints.pop("plugin_settings")
    return hints


def _check(name: str, value: Any, hint: Any) -> None:
    if not _matches(value, hint):
        raise ConfigurationError(f"setting {name!r} must be {_describe(hint)}, got {value!r} "
                                 f"({type(value).__name__})")


def _matches(value: Any, hint: Any) -> bool:
    """Whether `value` fits the annotation `hint` (the subset settings use)."""
    if hint is Any:
        return True
    if hint is None or hint is type(None):
        return value is None
    origin = get_origin(hint)
    if origin in (Union, UnionType):
        return any(_matches(value, arg) for arg in get_args(hint))
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (tuple, list):
        args = [a for a in get_args(hint) if a is not Ellipsis]
        return isinstance(value, (tuple, list)) and all(
            _matches(v, args[0]) for v in value) if args else isinstance(value, (tuple, list))
    if origin is dict:
        return isinstance(value, dict)
    return isinstance(value, origin or hint)


def _describe(hint: Any) -> str:
    if get_origin(hint) in (Union, UnionType):
        return " or ".join(_describe(arg) for arg in get_args(hint))
    if hint is None or hint is type(None):
        return "None"
    origin = get_origin(hint)
    if origin in (tuple, list):
        args = [a for a in get_args(hint) if a is not Ellipsis]
        return f"a list of {_describe(args[0])}" if args else "a list"
    if origin is dict:
        return "a dict"
    return getattr(hint, "__name__", str(hint))


def first_set(*values: Any) -> Any:
    """The first value that is not None: a call's option, then the task's, then the app's."""
    return next((value for value in values if value is not None), None)


def settings_from_object(source: Any, namespace: str | None = None) -> dict[str, Any]:
    """The settings an object holds, as `Config.from_mapping` takes them: what
    ``App.config_from_object`` reads.

    `source` is a mapping, an object or module (its attributes), or a string naming one:
    ``"proj.settings"`` (a module), ``"django.conf:settings"`` or ``"proj.conf.Settings"`` (an
    attribute of a module). Celery's rule for names: with a `namespace` (``"KERNEL"``), the
    settings are the names that start with ``KERNEL_``, less that prefix, lower-cased
    (``KERNEL_BROKER_URL`` is ``broker_url``); without one, the public lower-case names that
    are not modules, classes or functions (upper-case names are left alone as constants)."""
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
        if (isinstance(name, str) and not name.startswith("_") and name == name.lower()
                and not inspect.ismodule(value) and not inspect.isclass(value)
                and not inspect.isroutine(value)):
            found[name] = value
    return found


def import_object(spec: str) -> Any:
    """``module``, ``module:attr`` or ``module.attr``: what the name points to."""
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


def _attribute(module: Any, name: str, spec: str) -> Any:
    try:
        return getattr(module, name)
    except AttributeError:
        raise ConfigurationError(f"the configuration {spec!r} names {name!r}, which "
                                 f"{module.__name__} does not define") from None
