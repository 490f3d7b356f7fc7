"""Settings, with their defaults and the check that turns a typo into a sentence."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import get_close_matches
from functools import cache
from types import UnionType
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin, get_type_hints

from kernel.config_sources import celery_setting, kernel_name, settings_from_env
from kernel.errors import ConfigurationError
from kernel.parsing import mask_url, parse_rate
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
    #: where tasks go, by name (``{"proj.tasks.*": {"queue": "slow"}}``, glob and regex
    #: keys), router functions or objects, or a list of them: Celery's rules, see
    #: docs/user-guide/routing.md.
    task_routes: Any = None
    #: the queues a worker consumes by default and their exchanges and bindings:
    #: ``[{"name": "feed", "exchange": "feeds", "exchange_type": "topic", "routing_key":
    #: "feed.#"}]`` (dicts, or kombu ``Queue`` objects as Celery's configurations hold them).
    task_queues: Any = None
    #: a queue named by a route or a send and not in ``task_queues`` is created (as Celery);
    #: False makes it an error.
    task_create_missing_queues: bool = True
    #: the exchange (AMQP), its type and the routing key of tasks whose route names none:
    #: None is the queue's own direct exchange and the queue's name, as Celery's defaults.
    task_default_exchange: str | None = None
    task_default_exchange_type: str = "direct"
    task_default_routing_key: str | None = None
    #: options set on tasks by name (``{"tasks.add": {"rate_limit": "10/m"}}``, ``"*"`` for
    #: all), objects with ``annotate(name)``, or a list of them, as Celery's.
    task_annotations: Any = None
    #: the per-worker rate limit of every task that gives none ("10/s"); None: no limit.
    task_default_rate_limit: str | None = None
    #: a worker ignores every rate limit (per worker and global), as Celery's setting.
    worker_disable_rate_limits: bool = False
    #: modules a worker imports as it starts (where tasks are declared), as Celery's
    #: ``imports`` and ``include``.
    imports: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
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
    #: where each setting not at its default came from ("env KERNEL_BROKER_URL", "object
    #: proj.celeryconfig", "App()", "app.conf.update", "command line").
    sources: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    #: the plugins' declarations, for `update` and the environment.
    specs: dict[str, SettingSpec] = field(default_factory=dict, repr=False, compare=False)
    #: the App's check run before `update` changes a setting (connections already open).
    guard: Callable[[Iterable[str]], None] | None = field(default=None, repr=False,
                                                           compare=False)

    @classmethod
    def names(cls) -> frozenset[str]:
        """kernel's own setting names."""
        return frozenset(f.name for f in dataclasses.fields(cls)) - _NOT_SETTINGS

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None = None, *,
                     plugin_settings: Iterable[SettingSpec] = (), **overrides: Any) -> Config:
        """Defaults, then ``KERNEL_<NAME>`` environment variables, then `values`, then
        `overrides` (those not None)."""
        return cls.from_layers([("App()", values or {}),
                                ("App()", {k: v for k, v in overrides.items() if v is not None})],
                               plugin_settings=plugin_settings)

    @classmethod
    def from_layers(cls, layers: Sequence[tuple[str, Mapping[str, Any]]], *,
                    plugin_settings: Iterable[SettingSpec] = (), env: bool = True) -> Config:
        """Defaults, then the ``KERNEL_<NAME>`` environment variables (with `env`), then each
        layer in turn, a later one winning; a layer is (where its values come from, values).
        Names are kernel's own settings or those plugins declare (`plugin_settings`), or
        Celery's names for them (old upper-case ones with a deprecation line); an unknown
        name is an error that suggests the closest one, and a value of the wrong type an error
        naming the type wanted."""
        declared = {spec.name: spec for spec in plugin_settings}
        hints = {**_own_hints(), **{name: spec.type for name, spec in declared.items()}}
        merged: dict[str, Any] = {}
        sources: dict[str, str] = {}
        if env:
            for name, (value, var) in settings_from_env(hints).items():
                merged[name], sources[name] = value, f"env {var}"
        for where, values in layers:
            for key, value in values.items():
                found = kernel_name(key, hints)
                if found is not None:
                    merged[found], sources[found] = value, where
        own: dict[str, Any] = {}
        plugins = {name: spec.default for name, spec in declared.items()}
        for key, value in merged.items():
            if key not in hints:
                raise ConfigurationError(_unknown(key, hints, sources.get(key)))
            value = _as_tuple(value, hints[key])
            _check(key, value, hints[key], sources.get(key))
            (plugins if key in declared else own)[key] = value
        _check_values(own)
        return cls(**own, plugin_settings=plugins, sources=sources, specs=declared)

    def update(self, values: Mapping[str, Any] | None = None, /, **more: Any) -> None:
        """``app.conf.update(task_serializer="json", ...)``, as Celery's: every name checked
        as in `from_layers` (Celery's names accepted), the values shown as coming from
        ``app.conf.update``. Settings a connection already read are an error once the App
        has connected (the connection would not see them)."""
        given = {**(values or {}), **more}
        hints = {**_own_hints(), **{name: spec.type for name, spec in self.specs.items()}}
        checked: dict[str, Any] = {}
        for key, value in given.items():
            name = kernel_name(key, hints)
            if name is None:
                continue
            if name not in hints:
                raise ConfigurationError(_unknown(name, hints, "app.conf.update"))
            value = _as_tuple(value, hints[name])
            _check(name, value, hints[name], "app.conf.update")
            checked[name] = value
        _check_values({k: v for k, v in checked.items() if k not in self.specs})
        if self.guard is not None:
            self.guard(checked)
        for name, value in checked.items():
            if name in self.specs:
                self.plugin_settings[name] = value
            else:
                setattr(self, name, value)
            self.sources[name] = "app.conf.update"

    def __getitem__(self, name: str) -> Any:
        """``app.conf["task_routes"]``, as Celery's mapping-like settings allow."""
        return self.get(name)

    def __setitem__(self, name: str, value: Any) -> None:
        """``app.conf["task_routes"] = {...}``: `update` of one setting."""
        self.update({name: value})

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


_NOT_SETTINGS = frozenset({"plugin_settings", "sources", "specs", "guard"})


@cache
def _own_hints() -> dict[str, Any]:
    hints = get_type_hints(Config, localns={"SettingSpec": Any})
    for name in _NOT_SETTINGS:
        hints.pop(name)
    return hints


def _unknown(name: str, hints: Mapping[str, Any], where: str | None) -> str:
    # The object a setting came from is named by the App, which wraps this sentence.
    origin = f" (in {where})" if where == "app.conf.update" else ""
    if celery_setting(name):
        return (f"setting {name!r}{origin} is a Celery setting kernel does not have; remove "
                f"it (docs/migrating-from-celery.md lists what kernel has instead)")
    close = get_close_matches(name, list(hints), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown setting {name!r}{origin}{hint}"


def _as_tuple(value: Any, hint: Any) -> Any:
    """A list where a tuple is wanted (``accept_content = ["json"]``), as a tuple."""
    if isinstance(value, list) and any(
            get_origin(option) is tuple for option in
            (get_args(hint) if get_origin(hint) in (Union, UnionType) else (hint,))):
        return tuple(value)
    return value


def _check_values(own: Mapping[str, Any]) -> None:
    """What a type cannot say: a known zone, positive intervals, a rate that parses."""
    if "timezone" in own:
        try:
            resolve_timezone(own["timezone"])
        except ValueError as exc:
            raise ConfigurationError(f"setting 'timezone': {exc}") from None
    for key in ("beat_max_loop_interval", "beat_lease_ttl", "beat_cron_starting_deadline"):
        value = own.get(key)
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise ConfigurationError(f"setting {key!r} must be a positive number of "
                                     f"seconds, got {value!r}")
    retries = own.get("broker_connection_max_retries")
    if retries is not None and retries < 0:
        raise ConfigurationError(f"setting 'broker_connection_max_retries' must be 0 or more "
                                 f"(0 or None: retry forever), got {retries!r}")
    rate = own.get("task_default_rate_limit")
    if rate is not None:
        try:
            parse_rate(rate)
        except ConfigurationError as exc:
            raise ConfigurationError(f"setting 'task_default_rate_limit': {exc}") from None


def _check(name: str, value: Any, hint: Any, where: str | None = None) -> None:
    if not _matches(value, hint):
        # The App names an object the value came from; other places are named here.
        fix = f"; fix it in {where}" if where and not where.startswith("object ") else ""
        raise ConfigurationError(f"setting {name!r} must be {_describe(hint)}, got {value!r} "
                                 f"({type(value).__name__}){fix}")


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
