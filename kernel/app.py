"""The App: configuration, plugins, the task registry, and the client side of sending tasks."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import sys
import weakref
from collections.abc import Callable, Coroutine, Iterable, Sequence
from contextlib import AbstractContextManager
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

from typing_extensions import ParamSpec, Unpack

from kernel import producer, shared
from kernel.codec import Codec
from kernel.config import DEFAULT_URL, Config
from kernel.config_sources import celery_keywords, import_object, settings_from_object
from kernel.errors import ConfigurationError, MissingCapability
from kernel.fields import RecordFields
from kernel.hookspecs import hookimpl
from kernel.interfaces.transport import Transport
from kernel.parsing import parse_rate
from kernel.plugins import PluginManager, Registry
from kernel.producer import Producer
from kernel.records import ResultBackend
from kernel.result import AsyncResult
from kernel.signals import SIGNALS, Signals
from kernel.options import SendOptions, TaskOptions, annotations_for
from kernel.task import Task

if TYPE_CHECKING:
    from kernel.beat.periodic import Periodic
    from kernel.interfaces.ratelimit import RateLimitStore
    from kernel.interfaces.schedule import ScheduleStore
    from kernel.control import Control
    from kernel.events.dispatcher import EventDispatcher

P = ParamSpec("P")
R = TypeVar("R")

_apps: weakref.WeakSet[App] = weakref.WeakSet()
#: settings a connection reads as it opens: changing them afterwards changes nothing.
CONNECTION_SETTINGS = frozenset({
    "broker_url", "result_backend", "transport_options", "result_backend_options",
    "rate_limit_store", "broker_connection_timeout", "task_queues", "accept_content",
    "task_serializer", "result_serializer"})


def task_class(given: Any) -> type[Task[Any, Any]]:
    """Celery's ``task_cls``: a subclass of `kernel.Task`, or its ``module:Class`` name."""
    found = import_object(given) if isinstance(given, str) else given
    if found is None:
        return Task
    if not (isinstance(found, type) and issubclass(found, Task)):
        raise ConfigurationError(
            f"App(task_cls={given!r}): the task class must be kernel.Task or a subclass of "
            f"it; change the base class from celery.Task to kernel.Task")
    return found


def _after_fork_in_child() -> None:
    # Connections opened before a fork belong to the parent: never use them in the child.
    for app in list(_apps):
        app._forget_connections()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _TaskDecorator(Protocol):
    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]]) -> Task[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R]) -> Task[P, R]: ...


class App:
    """A kernel application.

    ``App("proj", broker="redis://localhost", results="redis://localhost")``; with nothing given,
    broker and results are the embedded SQLite file ``kernel.db`` in the working directory.
    ``plugins=[...]`` registers plugin objects programmatically (before entry points);
    ``autoload=False`` skips entry points; ``disable=[...]`` turns plugins off by name.

    Celery's constructor keywords are taken too (``kernel.Celery`` is this class): ``main``,
    ``backend`` (``results``), ``include``, ``config_source``, ``namespace``, ``task_cls``,
    ``set_as_current``, ``changes`` and settings by name (``task_default_queue="jobs"``);
    see docs/migrating-from-celery.md.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        broker: str | None = None,
        results: str | None = None,
        plugins: Sequence[object] = (),
        config: dict[str, Any] | Config | None = None,
        autoload: bool | None = None,
        disable: Iterable[str] = (),
        **celery: Any,
    ) -> None:
        self.plugins = PluginManager(plugins, autoload=autoload, disabled=disable)
        given = celery_keywords(celery, Config.names() | set(self.plugins.settings))
        self.main = name or given.main or "kernel"
        results = results if results is not None else given.backend
        #: the prefix of setting names in `config_from_object`'s sources (Celery's
        #: ``namespace``, ``"CELERY"`` in Django projects).
        self.namespace = given.namespace
        #: the class of this App's tasks (Celery's ``task_cls``): `Task` or a subclass.
        self.task_cls: type[Task[Any, Any]] = task_class(given.task_cls)
        #: the settings given here, which win over those of `config_from_object` (Celery's
        #: rule), and the result store derived from the broker, which does not.
        self._preconf: dict[str, Any] = {**given.settings}
        #: where each of `_preconf` came from, for `kernel report`.
        self._preconf_from: dict[str, str] = {}
        self._derived: dict[str, Any] = {}
        #: (object, namespace) of `config_from_object`, read when `conf` is next needed.
        self._source: tuple[Any, str | None] | None = None
        self._conf: Config | None = None
        #: opened connections make settings they read fixed (`conf.update` says so).
        self._transport: Transport | None = None
        self._backend: ResultBackend | None = None
        if isinstance(config, Config):
            self._conf = config
            config.guard = self._guard_update
        else:
            self._preconf.update(config or {})
            if broker is not None:
                self._preconf["broker_url"] = broker
                if results is None and "result_backend" not in self._preconf and (
                        "KERNEL_RESULT_BACKEND" not in os.environ):
                    scheme = broker.partition("://")[0]
                    self._derived["result_backend"] = (
                        broker if scheme in self.plugins.result_stores else None)
            if results is not None:
                self._preconf["result_backend"] = results
            if given.config_source is not None:
                self.config_from_object(given.config_source)
            else:
                self._conf = self._build_conf()
        #: what `autodiscover_tasks` asked for and `import_discovered` has not imported yet.
        self._discover: list[tuple[Any, str]] = []
        self.tasks: dict[str, Task[Any, Any]] = {}
        self._module = sys._getframe(1).f_globals.get("__name__")
        self._import_spec: str | None = None
        self._rate_limits: RateLimitStore | None = None
        self._schedule_store: ScheduleStore | None = None
        self._beat: Periodic | None = None
        self._codec: Codec | None = None
        self._signals: Signals | None = None
        self._events: EventDispatcher | None = None
        #: the sending side: `send_task`, `send_many` and `pipelined` go through it.
        self.producer = Producer(self)
        self._pid = os.getpid()
        _apps.add(self)
        self.plugins.hook.kernel_app_created(app=self)
        shared.adopt(self, current=given.set_as_current)

    def __repr__(self) -> str:
        return f"<App {self.main}>"

    # ------------------------------------------------------------------ configuration

    @property
    def conf(self) -> Config:
        """The settings, read from `config_from_object`'s source when first needed."""
        if self._conf is None:
            self._conf = self._build_conf()
            self.annotate_tasks()  # tasks declared before config_from_object's settings
        return self._conf

    @conf.setter
    def conf(self, value: Config) -> None:
        value.guard = self._guard_update
        self._conf = value
        self._source = None

    def _build_conf(self) -> Config:
        specs = self.plugins.settings.values()
        preconf = [(self._preconf_from.get(name, "App()"), {name: value})
                   for name, value in self._preconf.items()]
        if self._source is None:
            conf = Config.from_layers([("derived from broker_url", self._derived), *preconf],
                                      plugin_settings=specs)
        else:
            source, namespace = self._source
            read = settings_from_object(source, namespace)
            where = source if isinstance(source, str) else getattr(
                source, "__name__", type(source).__name__)
            try:
                conf = Config.from_layers([("derived from broker_url", self._derived),
                                           (f"object {where}", read), *preconf],
                                          plugin_settings=specs)
            except ConfigurationError as exc:
                named = f" (namespace {namespace})" if namespace else ""
                raise ConfigurationError(f"the configuration from {where}{named}: "
                                         f"{exc}") from None
        conf.guard = self._guard_update
        return conf

    def _guard_update(self, names: Iterable[str]) -> None:
        """`conf.update` of a setting an open connection read: an error, not a change that
        silently does nothing until the next process."""
        late = sorted(set(names) & CONNECTION_SETTINGS)
        if late and (self._transport is not None or self._backend is not None):
            raise ConfigurationError(
                f"app.conf.update({', '.join(late)}=...) after {self.main!r} connected: the "
                f"open connections would not see it; update the settings before the first "
                f"send, or call app.close() first")

    def config_from_envvar(self, variable_name: str, silent: bool = False,
                           force: bool = False) -> None:
        """`config_from_object` of the module the environment variable `variable_name`
        names (``KERNEL_CONFIG_MODULE=proj.settings``), as Celery's; a variable that is not
        set is an error unless `silent`."""
        module = os.environ.get(variable_name)
        if not module:
            if silent:
                return
            raise ConfigurationError(
                f"config_from_envvar({variable_name!r}): the environment variable "
                f"{variable_name} is not set; set it to the module holding the settings "
                f"(e.g. {variable_name}=proj.celeryconfig)")
        self.config_from_object(module, silent=silent, force=force)

    def config_from_object(self, obj: Any, silent: bool = False, force: bool = False,
                           namespace: str | None = None) -> None:
        """Take settings from `obj`: a module, an object, a mapping or a string naming one
        (``"proj.settings"``, ``"django.conf:settings"``), read when the settings are next
        needed, so a module may call this before Django's settings can be read. With
        ``namespace="KERNEL"`` only names starting with ``KERNEL_`` count, without the prefix
        and lower-cased (``KERNEL_BROKER_URL`` is ``broker_url``), as Celery's does.

        Settings given to ``App(...)`` and changes made to ``app.conf`` before this call win
        over the object's; a later call replaces this one's object. Connections opened with
        the old settings are closed. `force` reads the object now; `silent` ignores one that
        cannot be imported."""
        namespace = namespace if namespace is not None else self.namespace
        kept = dict(self._preconf)
        if self._conf is not None:
            # Changes made to the settings in place (app.conf.x = y) outlive the reload.
            built = self._build_conf()
            changed = {name: getattr(self._conf, name) for name in Config.names()
                       if getattr(self._conf, name) != getattr(built, name)}
            changed.update({name: value for name, value in self._conf.plugin_settings.items()
                            if built.plugin_settings.get(name) != value})
            for name, value in changed.items():
                kept[name] = value
                self._preconf_from[name] = self._conf.sources.get(name, "app.conf")
        if isinstance(obj, str) and silent:
            try:
                import_object(obj)
            except ConfigurationError:
                return
        if self._transport is not None or self._backend is not None:
            self.close()
        self._codec = None
        self._preconf = kept
        self._source = (obj, namespace)
        self._conf = None
        if force:
            self._conf = self._build_conf()

    def setup_security(self, allowed_serializers: Iterable[str] | None = None,
                       key: str | None = None, key_password: str | bytes | None = None,
                       cert: str | None = None, store: str | None = None,
                       digest: str | None = None, serializer: str = "json") -> None:
        """Sign every task this app sends and accept only signed tasks, as Celery's: the task
        serializer becomes ``auth`` (X.509 signatures, kernel-signing) signing what
        `serializer` makes, and ``accept_content`` becomes ``["auth"]``. Arguments left None
        keep the ``security_*`` settings, read here (a missing file or a wrong password is
        a `ConfigurationError` from this call). A signed message may carry any serializer that
        cannot run code (json, msgpack, yaml) inside; `allowed_serializers` (Celery's
        argument) may name those only: pickle inside a signature needs pickle in
        ``accept_content``, which accepts it unsigned too, a choice left to the user."""
        self.plugins.signers.get("auth")  # the sentence saying what to install, if missing
        unsafe = [name for name in allowed_serializers or ()
                  if name in self.plugins.serializers and self.plugins.serializers.get(name).unsafe]
        if unsafe:
            raise ConfigurationError(
                f"setup_security: {', '.join(unsafe)} can run code from a message, so kernel "
                f"does not accept it inside signatures on its own; add it to accept_content "
                f"after setup_security if you mean to")
        conf = self.conf
        given = {"security_key": key, "security_key_password": key_password,
                 "security_certificate": cert, "security_cert_store": store,
                 "security_digest": digest}
        conf.plugin_settings.update({k: v for k, v in given.items() if v is not None})
        conf.plugin_settings["security_serializer"] = serializer
        conf.task_serializer = "auth"
        conf.accept_content = ("auth",)
        self._codec = None
        self.codec.signer("auth")  # read the key, certificate and store now: errors here

    # ------------------------------------------------------------------ pickling (prefork)

    @property
    def import_spec(self) -> str:
        """``module:attribute`` where this app can be imported from (how pool children find it)."""
        if self._import_spec is None:
            self._import_spec = self._find_spec()
        return self._import_spec

    @import_spec.setter
    def import_spec(self, spec: str) -> None:
        self._import_spec = spec

    def _find_spec(self) -> str:
        candidates = [self._module] if self._module else []
        candidates += [name for name in list(sys.modules) if name != self._module]
        for modname in candidates:
            module = sys.modules.get(modname)
            for attr, value in list(getattr(module, "__dict__", {}).items()):
                if value is self:
                    return f"{modname}:{attr}"
        raise ConfigurationError(
            f"app {self.main!r} is not a module-level name, so pool processes cannot import it; "
            f"define it at module level and start the worker with -A module:app")

    def __reduce__(self) -> tuple[Any, ...]:
        return (load_app, (self.import_spec,))

    # ------------------------------------------------------------------ connections

    def _forget_connections(self) -> None:
        self._events = None
        self._transport = None
        self._backend = None
        self._rate_limits = None
        self._schedule_store = None
        self._pid = os.getpid()

    @property
    def codec(self) -> Codec:
        if self._codec is None:
            self._codec = Codec(self.plugins.serializers, self.plugins.compressors,
                                accept=self.conf.accept_content, signers=self.plugins.signers,
                                signer_options=lambda name: self._settings_of(
                                    self.plugins.signers, name),
                                accept_compression=self.conf.accept_compression,
                                compression_min_bytes=self.conf.task_compression_min_bytes)
        return self._codec

    @property
    def transport(self) -> Transport:
        """This process's broker connection, created on first use."""
        if self._transport is None:
            url = self.conf.broker_url
            registry = self.plugins.transports
            spec = registry.get(scheme_of(url))
            options = {"connection_timeout": self.conf.broker_connection_timeout,
                       **self._settings_of(registry, url), "lease_seconds": self.lease_seconds,
                       **self.conf.transport_options}
            self._transport = spec.factory(url, options)
        return self._transport

    @property
    def lease_seconds(self) -> float:
        """How long the transport leases a fetched message: ``worker_lease_seconds`` unless
        ``transport_options`` say otherwise. The worker renews every third of it and counts a
        message as its own no longer than that after the last renewal."""
        return float(self.conf.transport_options.get("lease_seconds",
                                                      self.conf.worker_lease_seconds))

    @property
    def backend(self) -> ResultBackend:
        """This process's result backend, created on first use."""
        if self._backend is None:
            url = self.conf.result_backend
            store = None
            if url:
                registry = self.plugins.result_stores
                spec = registry.get(scheme_of(url))
                # Stores that work through the broker (rpc://) find it, and how to connect to
                # it (TLS settings, timeouts), here.
                # A send writes its PENDING record here first: it gives up in the same time.
                store = spec.factory(url, {"broker_url": self.conf.broker_url,
                                           "broker_options": dict(self.conf.transport_options),
                                           "connection_timeout":
                                               self.conf.broker_connection_timeout,
                                           # Stores that keep Celery's columns (SQL, MongoDB)
                                           # decode records into them; cleanups use the age.
                                           "record_fields": RecordFields(
                                               self.codec.serializer(self.conf.result_serializer)),
                                           "result_expires": self.conf.result_expires,
                                           "worker_concurrency": self.conf.worker_concurrency,
                                           **self._settings_of(registry, url),
                                           **self.conf.result_backend_options})
            self._backend = ResultBackend(store, self.codec, self.conf.result_serializer,
                                          self.conf.result_expires)
        return self._backend

    @property
    def rate_limits(self) -> RateLimitStore:
        """This process's rate-limit store (``rate_limit_store``, else the result backend's
        URL), created on first use."""
        if self._rate_limits is None:
            url = self.conf.rate_limit_store or self.conf.result_backend
            if not url:
                raise ConfigurationError("global rate limits keep shared token buckets in a "
                                         "rate-limit store: set rate_limit_store (or "
                                         "result_backend) to a redis:// or sqlite:// URL")
            registry = self.plugins.rate_limit_stores
            spec = registry.get(scheme_of(url))
            self._rate_limits = spec.factory(url, {**self._settings_of(registry, url),
                                                   **self.conf.result_backend_options})
        return self._rate_limits

    @property
    def schedule_store(self) -> ScheduleStore:
        """This process's schedule store (``beat_schedule_store``; by default the broker's URL
        where its plugin has a schedule store, else the SQLite file), created on first use."""
        if self._schedule_store is None:
            registry = self.plugins.schedule_stores
            url = self.conf.beat_schedule_store or (
                self.conf.broker_url if scheme_of(self.conf.broker_url) in registry
                else DEFAULT_URL)
            spec = registry.get(scheme_of(url))
            self._schedule_store = spec.factory(url, {
                "connection_timeout": self.conf.broker_connection_timeout,
                **self._settings_of(registry, url), **self.conf.beat_schedule_store_options})
        return self._schedule_store

    @property
    def beat(self) -> Periodic:
        """The app's periodic tasks and the dynamic API: ``app.beat.add(name, task,
        schedule)``, ``.remove``, ``.enable``, ``.disable``, ``.list()``, ``.status()``."""
        if self._beat is None:
            from kernel.beat.periodic import Periodic

            self._beat = Periodic(self)
        return self._beat

    def add_periodic_task(self, schedule: Any, sig: Any, name: str | None = None,
                          **options: Any) -> str:
        """Send `sig` (a signature, ``task.s(...)``) on `schedule` (a crontab, a schedule,
        seconds or a timedelta) whenever beat runs; `options` are send options. Returns the
        entry's name (default: the task's name and arguments)."""
        task, args, kwargs = sig["task"], list(sig.get("args") or ()), dict(sig.get("kwargs")
                                                                            or {})
        merged = {**(sig.get("options") or {}), **options}
        merged.pop("task_id", None)  # every tick is a new task
        entry = name or f"{task}{tuple(args)!r}" + (f"{kwargs!r}" if kwargs else "")
        self.beat.declare(entry, task, schedule, args, kwargs, merged)
        return entry

    def periodic(self, schedule: Any, *, name: str | None = None, args: Sequence[Any] = (),
                 kwargs: dict[str, Any] | None = None,
                 **options: Any) -> Callable[[Any], Task[Any, Any]]:
        """``@app.periodic(crontab(minute=0), queue="reports")`` over a task or a function
        (made a task): beat sends it on `schedule`; `options` are send options."""
        return self.beat.decorator(schedule, name, args, kwargs, **options)

    def require_multi_process(self) -> None:
        """A worker in its own process needs a broker other processes can reach."""
        spec = self.plugins.transports.get(scheme_of(self.conf.broker_url))
        if not spec.capabilities.multi_process:
            raise MissingCapability(
                f"broker {spec.name!r} lives inside one process; a separate worker cannot read "
                f"it; use sqlite:// (the default) or a server broker")

    def _settings_of(self, registry: Registry[Any], url_or_name: str) -> dict[str, Any]:
        """The settings the plugin serving `url_or_name` (a URL, or a signer's name) declared,
        with their values: what its factories find in their options."""
        owner = registry.owner(scheme_of(url_or_name))
        settings = self.plugins.settings
        return {name: self.conf.plugin_settings.get(name, spec.default)
                for name, spec in settings.items() if owner and settings.owner(name) == owner}

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        if self._backend is not None and self._backend.store is not None:
            self._backend.store.close()
        if self._rate_limits is not None:
            self._rate_limits.close()
        if self._schedule_store is not None:
            self._schedule_store.close()
        self._forget_connections()

    # ------------------------------------------------------------------ tasks

    @overload
    def task(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> Task[P, R]: ...
    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...
    @overload
    def task(self, *, name: str | None = None, **options: Any) -> _TaskDecorator: ...

    def task(self, fn: Callable[..., Any] | None = None, /, *, name: str | None = None,  # type: ignore[misc]
             **options: Any) -> Any:
        """Register a function (sync or ``async def``) as a task.

        Options: queue, max_retries, acks_late, reject_on_worker_lost, ignore_result,
        time_limit, soft_time_limit, rate_limit, serializer, compression, priority, bind, and any
        option a plugin declares through ``kernel_task_options``.
        """
        known = TaskOptions.names()
        plugin_opts = {opt for found in self.plugins.hook.kernel_task_options() for opt in found}
        unknown = set(options) - known - plugin_opts
        if unknown:
            raise ConfigurationError(
                f"unknown task option(s) {', '.join(sorted(unknown))}; known: "
                f"{', '.join(sorted(known | plugin_opts))}")
        extra = {k: options.pop(k) for k in list(options) if k in plugin_opts and k not in known}
        task_options = TaskOptions(**options, extra=extra)
        for rate in (task_options.rate_limit, task_options.global_rate_limit):
            if rate is not None:
                parse_rate(rate)  # a bad rate is an error here, not in a running worker
        if (task_options.unique or task_options.unique_key
                or task_options.unique_for) and not self.conf.result_backend:
            raise ConfigurationError("unique tasks keep their claims in the result store: set "
                                     "result_backend")
        if task_options.global_rate_limit and not (self.conf.rate_limit_store
                                                   or self.conf.result_backend):
            raise ConfigurationError("a global_rate_limit keeps shared token buckets in a "
                                     "rate-limit store: set rate_limit_store (or "
                                     "result_backend)")

        def register(func: Callable[..., Any]) -> Task[Any, Any]:
            module = func.__module__
            if module == "__main__":
                module = self.main
            task_name = name or f"{module}.{func.__qualname__}"
            task: Task[Any, Any] = self.task_cls(self, func, task_name,
                                                 self._annotated(task_name, task_options))
            self.tasks[task_name] = task
            return task

        return register(fn) if fn is not None else register

    def _annotated(self, name: str, options: TaskOptions) -> TaskOptions:
        """`options` with what ``task_annotations`` sets on task `name`; nothing while the
        settings are unread (reading them applies the annotations: `conf`)."""
        if self._conf is None:
            return options
        try:
            found = annotations_for(self._conf.task_annotations, name)
            if found.get("rate_limit") is not None:
                parse_rate(found["rate_limit"])
            return dataclasses.replace(options, **found) if found else options
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(str(exc)) from None

    def annotate_tasks(self) -> None:
        """Apply ``task_annotations`` to every registered task again (the settings may have
        been read after the tasks were declared): what a worker does as it starts."""
        for task in self.tasks.values():
            if not isinstance(task, shared.SharedTask):
                task.options = self._annotated(task.name, task.options)

    def set_current(self) -> None:
        """Make this the App that shared tasks (`kernel.shared_task`) use; the last App
        created is current until then."""
        shared.set_current(self)

    def autodiscover_tasks(self, packages: Iterable[str] | Callable[[], Iterable[str]] | None
                           = None, related_name: str = "tasks", force: bool = False) -> None:
        """Import the ``tasks`` module (`related_name`) of each package, when a worker starts
        (or now, with `force`), so the tasks they declare are registered. `packages` may be a
        callable, called then; None asks the plugins (kernel-django: the INSTALLED_APPS, once
        Django's app registry is ready). A package without that module is skipped; an error
        inside one is raised."""
        self._discover.append((packages, related_name))
        if force:
            self.import_discovered()

    def import_discovered(self) -> list[str]:
        """Import the modules of the ``imports`` and ``include`` settings and what
        `autodiscover_tasks` asked for, those not imported yet; returns the modules imported.
        Workers call it as they start."""
        imported = []
        for module in (*self.conf.imports, *self.conf.include):
            if module not in sys.modules:
                import_object(module)  # a module that does not import: one sentence
                imported.append(module)
        self.annotate_tasks()
        while self._discover:
            packages, related = self._discover.pop(0)
            if callable(packages):
                packages = packages()
            if packages is None:
                packages = [name for found in self.plugins.hook.kernel_autodiscover_packages(
                    app=self) for name in found]
            for package in packages:
                module = f"{package}.{related}"
                try:
                    found = importlib.util.find_spec(module)
                except ModuleNotFoundError:
                    found = None  # the package itself is not importable as a package
                if found is not None:
                    importlib.import_module(module)
                    imported.append(module)
        return imported

    def on_commit(self, callback: Callable[[], object]) -> None:
        """Call `callback` once the current database transaction commits (at once outside
        one): through the plugin that knows the transactions (kernel-django), else a
        `ConfigurationError`. What `Task.delay_on_commit` uses."""
        if not self.plugins.hook.kernel_on_commit(app=self, callback=callback):
            raise ConfigurationError(
                "delay_on_commit sends a task when the database transaction commits, and no "
                "installed plugin knows your transactions; install kernel[django] (Django) or "
                "send with delay()")

    # ------------------------------------------------------------------ sending

    def send_task(self, name: str, args: Sequence[Any] | None = None,
                  kwargs: dict[str, Any] | None = None, *, _task: Task[Any, Any] | None = None,
                  **options: Unpack[SendOptions]) -> AsyncResult[Any]:
        """Send a task by name (it need not be registered here); see `Task.apply_async`."""
        return self.producer.send(name, args, kwargs, options, _task)

    def send_many(self, calls: Iterable[producer.Call],
                  **options: Unpack[SendOptions]) -> list[AsyncResult[Any]]:
        """Send many tasks in one broker round trip: ``[(task_or_name, args, kwargs), ...]``;
        `options` apply to every call (queue, countdown, priority, ...), and a fourth element,
        a dict of options, to its call alone (task_id, group_id, ...)."""
        return self.producer.send_many(calls, options)

    def pipelined(self) -> AbstractContextManager[None]:
        """``with app.pipelined(): ...``: `delay`, `apply_async` and `send_many` in the block
        return without waiting for the broker, and one background thread publishes what they
        send, in order, in batches. Leaving the block waits until every task is published, or
        raises `PublishError` naming those that were not (`kernel.producer` says exactly what
        is promised). Unique tasks still publish synchronously, after what was sent before."""
        return self.producer.pipelined()

    # ------------------------------------------------------------------ signals

    @property
    def signals(self) -> Signals:
        if self._signals is None:
            self._signals = Signals(self.plugins.pm)
        return self._signals

    def connect(self, signal: str, receiver: Callable[..., Any]) -> None:
        """Call `receiver` on a task signal: ``app.connect("task_failure", fn)`` where
        ``fn(call)`` takes the hook's arguments by name (see kernel.hookspecs, hooks
        ``kernel_<signal>``). Connect before a worker starts; pool processes that import the
        app connect again there."""
        name = f"kernel_{signal}"
        if name not in SIGNALS:
            close = get_close_matches(signal, [s[len("kernel_"):] for s in SIGNALS], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigurationError(f"no signal {signal!r}{hint}")
        plugin = type(f"Receiver_{signal}", (), {name: staticmethod(hookimpl(receiver))})
        self.plugins.register(plugin, name=f"receiver:{signal}:{id(receiver)}")
        self._signals = None

    @property
    def events(self) -> EventDispatcher:
        """This process's event sender (`kernel.events.EventDispatcher`)."""
        if self._events is None:
            from kernel.events.dispatcher import EventDispatcher

            self._events = EventDispatcher(self)
        return self._events

    @property
    def control(self) -> Control:
        """Commands for workers: ``app.control.revoke(ids, terminate=False)``."""
        from kernel.control import Control

        return Control(self)

    def AsyncResult(self, task_id: str) -> AsyncResult[Any]:
        return AsyncResult(task_id, self)


# ---------------------------------------------------------------------- finding an App

_loaded: dict[str, App] = {}


def scheme_of(url: str) -> str:
    """The scheme that selects a URL's plugin: ``redis`` of ``redis://host``."""
    return url.partition("://")[0]


def load_app(spec: str) -> App:
    """The App ``-A`` names, found where Celery's ``-A`` looks: ``module:attr`` (an App, or a
    function returning one), else in the module ``proj``: ``proj.app``, ``proj.celery``, its
    one App under another name, then the same in ``proj.celery`` (the "Next steps" layout,
    ``proj/celery.py``). ``proj.tasks.app`` (the attribute after the last dot) works too."""
    found = _loaded.get(spec)
    if found is not None:
        return found
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name, _, attr = spec.partition(":")
    module = _import_for(module_name, spec, missing_ok=not attr and "." in module_name)
    if module is None:  # -A proj.tasks.app: the module proj.tasks, its attribute app
        module_name, _, attr = module_name.rpartition(".")
        module = _import_for(module_name, spec)
    if attr:
        obj = _app_from(getattr(module, attr, None), f"{module_name}:{attr}")
        if obj is None:
            raise ConfigurationError(f"-A {spec}: {module_name} has no kernel App named "
                                     f"{attr!r}{_found_in(module)}")
    else:
        obj, attr = _app_in(module, module_name)
        if obj is None:
            sub = _import_for(f"{module_name}.celery", spec, missing_ok=True)
            if sub is not None:
                obj, attr = _app_in(sub, sub.__name__)
                module_name = sub.__name__
        if obj is None:
            raise ConfigurationError(
                f"-A {spec}: found no kernel App in {module_name} (looked at "
                f"{module_name}.app, {module_name}.celery, {module_name}.celery.app and every "
                f"App there){_found_in(module)}; give -A module:attribute")
    obj.import_spec = f"{module_name}:{attr}"
    _loaded[spec] = obj
    return obj


def _import_for(module_name: str, spec: str, missing_ok: bool = False) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if missing_ok and exc.name == module_name:
            return None
        raise ConfigurationError(
            f"cannot import {module_name!r} for -A {spec}: {exc}; run from the directory that "
            f"contains it or put it on PYTHONPATH") from None
    except ImportError as exc:
        raise ConfigurationError(
            f"cannot import {module_name!r} for -A {spec}: {exc}; run from the directory that "
            f"contains it or put it on PYTHONPATH") from None
    except ConfigurationError:
        raise
    except Exception as exc:  # noqa: BLE001 - the module's own error, as one sentence
        raise ConfigurationError(f"-A {spec}: importing {module_name} raised "
                                 f"{type(exc).__name__}: {exc}; fix that module (--traceback "
                                 f"shows where)") from exc


def _app_from(value: Any, where: str) -> App | None:
    """`value` if it is an App; if it is a function (an app factory), what it returns."""
    if isinstance(value, App) or value is None:
        return value
    if callable(value) and not isinstance(value, type) and not isinstance(value, Task):
        made = value()
        if not isinstance(made, App):
            raise ConfigurationError(f"-A {where} is a function that returned {made!r}, not a "
                                     f"kernel App")
        return made
    return None


def _app_in(module: Any, module_name: str) -> tuple[App | None, str]:
    for attr in ("app", "celery"):
        value = getattr(module, attr, None)
        if isinstance(value, App):
            return value, attr
    # -A proj, where proj/__init__.py imports its one App under another name (as a Django
    # project's does, from proj/celery.py): that App, as Celery finds it.
    candidates = sorted({n for n, v in vars(module).items() if isinstance(v, App)})
    if len(candidates) == 1:
        return getattr(module, candidates[0]), candidates[0]
    if len(candidates) > 1:
        raise ConfigurationError(f"-A {module_name}: {module_name} holds several Apps "
                                 f"({', '.join(candidates)}); give -A {module_name}:NAME")
    return None, ""


def _found_in(module: Any) -> str:
    names = sorted({n for n, v in vars(module).items() if isinstance(v, App)})
    return f"; it has {', '.join(names)}" if names else ""
