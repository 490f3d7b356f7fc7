"""Every hook kernel calls, in lifecycle order, one docstring template each.

Hooks are for discovery, registration, configuration and coarse lifecycle events; they run at
boot and shutdown, never once per message. Per-message work goes through the typed interfaces in
`kernel.interfaces`.

Template of each docstring: summary; ``:param:`` / ``:returns:``; **Called** (by whom, when);
**Results** (first result or all collected); **Historic**; **Wrappers**; **Example**.

A plugin is any module or object with functions named like these hooks, decorated with
`kernel.hookimpl`, registered through the ``kernel.plugins`` entry-point group or
`App(plugins=[...])`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from kernel.app import App
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
    from kernel.message import Envelope, Request
    from kernel.interfaces.middleware import Call
    from kernel.worker.worker import Worker

PROJECT = "kernel"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# ----------------------------------------------------------------------------------------------
# Registration hooks: what a plugin provides. Called once per App, when its registries are built.
# ----------------------------------------------------------------------------------------------


@hookspec
def kernel_transports() -> Iterable[TransportSpec]:
    """Declare transports (brokers).

    :returns: records naming the URL schemes served, a lazy factory and the capabilities.

    **Called** by `kernel.plugins.PluginManager` when an App first needs a registry or calls a
    hook; a plugin whose registration hook raises is marked failed and none of its hooks is
    called again. **Results**: all collected; two records claiming one scheme are an error
    naming both plugins.
    **Historic**: no. **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_transports():
            def make(url, options):
                from kernel_redis.transport import RedisTransport   # heavy import, lazily
                return RedisTransport(url, options)
            yield TransportSpec("redis", ("redis", "rediss"), make,
                                TransportCapabilities(delayed_delivery=True, leases=True))
    """


@hookspec
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    """Declare result stores.

    :returns: records naming the URL schemes served, a lazy factory and the capabilities.

    **Called** by `PluginManager` when an App first needs that registry. **Results**: all
    collected; duplicate schemes are an error. **Historic**: no. **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_result_stores():
            yield ResultStoreSpec("redis", ("redis", "rediss"), make_store,
                                  ResultStoreCapabilities(push_wait=True, atomic_counter=True))
    """


@hookspec
def kernel_serializers() -> Iterable[SerializerSpec]:
    """Declare serializers.

    :returns: records with the short name, the content type and a factory.

    **Called** by `PluginManager` when an App first needs that registry. **Results**: all
    collected; duplicate names are an error. **Historic**: no. **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_serializers():
            yield SerializerSpec("msgpack", "application/x-msgpack", MsgpackSerializer)
    """


@hookspec
def kernel_compressors() -> Iterable[CompressorSpec]:
    """Declare compressors.

    :returns: records with the short name, the ``compression`` header value and a factory.

    **Called** by `PluginManager` when an App first needs that registry. **Results**: all collected.
    **Historic**: no. **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_compressors():
            yield CompressorSpec("zstd", "application/zstd", ZstdCompressor)
    """


@hookspec
def kernel_signers() -> Iterable[SignerSpec]:
    """Declare message signers.

    :returns: records with the short name (what ``task_serializer`` and ``accept_content``
        name), a factory taking the settings the plugin declared, and the content type signed
        messages carry.

    **Called** by `PluginManager` when an App first needs that registry. **Results**: all collected.
    **Historic**: no. **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_signers():
            yield SignerSpec("hmac", lambda options: HmacSigner(options["hmac_keys"]),
                             "application/x-kernel-hmac")
    """


@hookspec
def kernel_pools() -> Iterable[PoolSpec]:
    """Declare execution pools.

    :returns: records with the name (``-P NAME``), a factory ``(concurrency, **limits) -> Pool``,
        the capabilities, and for a pool that must change the process before anything else
        runs, ``patch``: a callable that does it (gevent's monkey-patching) and returns a line
        for the banner.

    **Called** by `PluginManager` when an App first needs that registry, and by ``kernel worker
    -P NAME`` before it imports the app, to call the record's ``patch`` first (the worker calls
    it again before it starts: it MUST be idempotent, and refuse with a sentence once threads
    or sockets exist). **Results**: all collected.
    **Historic**: no. **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_pools():
            yield PoolSpec("gevent", Lazy("kernel_gevent.pool:GeventPool"),
                           PoolCapabilities(hard_time_limit=True, green=True),
                           patch=Lazy("kernel_gevent.patching:patch"))
    """


@hookspec
def kernel_schedule_stores() -> Iterable[ScheduleStoreSpec]:
    """Declare schedule stores (beat state and leader lock).

    :returns: records naming the URL schemes served and a lazy factory.

    **Called** by `PluginManager` when an App first needs that registry. **Results**: all collected.
    **Historic**: no. **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_schedule_stores():
            yield ScheduleStoreSpec("redis", ("redis",), make_schedule_store)
    """


@hookspec
def kernel_rate_limit_stores() -> Iterable[RateLimitStoreSpec]:
    """Declare rate-limit stores (shared token buckets for global rate limits).

    :returns: records naming the URL schemes served and a lazy factory.

    **Called** by `App.rate_limits`, once per App, when a task with a global rate limit is
    first consumed. **Results**: all collected. **Historic**: no. **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_rate_limit_stores():
            yield RateLimitStoreSpec("redis", ("redis",), Lazy("my_plugin.buckets:Buckets"))
    """


@hookspec
def kernel_bootsteps() -> Iterable[BootstepSpec]:
    """Declare worker components (bootsteps) to start with every worker.

    :returns: records naming a `kernel.interfaces.Bootstep` subclass (or ``"module:Class"``,
        imported when a worker starts); its ``requires`` lists the steps it depends on, whose
        values it reads from ``deps`` in ``start``. The worker's own steps (pool, broker,
        results, consumer, revocations) come through this hook too (std plugin ``worker``).

    **Called** by the worker when it builds its blueprint. **Results**: all collected; a step
    whose name is taken is an error. **Historic**: no. **Wrappers**: no.

    **Example**::

        class Metrics(Bootstep[None]):
            name = "metrics"
            requires = (ConsumerStep,)
            def start(self, deps):
                self.server = serve_metrics(deps[ConsumerStep].counters)

        @hookimpl
        def kernel_bootsteps():
            yield BootstepSpec.of(Metrics)
    """


@hookspec
def kernel_middleware() -> Iterable[MiddlewareSpec]:
    """Declare per-task middleware (retries, limits, metrics, ...).

    :returns: records with a name, a factory and the middleware's place among the others by
        name: ``before=`` names it goes before (its before-hook runs first, its after-hook
        last), ``after=`` names it goes after; names no installed plugin provides are ignored.

    **Called** by the worker when it builds its execution pipeline, in each process that ends
    messages. **Results**: all collected; places that contradict each other are an error
    naming the middleware. **Historic**: no. **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_middleware():
            # outside the results middleware: its after-hook sees the stored result
            yield MiddlewareSpec("timing", TimingMiddleware, before=("results",))
    """


@hookspec
def kernel_settings() -> Iterable[SettingSpec]:
    """Declare the settings a plugin reads (Celery's names where Celery has them).

    :returns: records with the name, the type a value must have, the default and one line of
        documentation.

    **Called** by `PluginManager` when an App builds its configuration. **Results**: all
    collected; a name declared twice, or one of kernel's own settings, is an error naming the
    plugins. `App(config=...)` then accepts these names, checks their values' types, and
    suggests the closest name for a typo; the plugin's factories receive its settings in their
    options. **Historic**: no. **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_settings():
            yield SettingSpec("s3_bucket", str, None, "the bucket results are written to")
            yield SettingSpec("s3_secret_access_key", str | None, None, "the secret key",
                              secret=True)
    """


@hookspec
def kernel_task_options() -> Iterable[str]:
    """Declare extra keyword options that ``@app.task(...)`` accepts.

    :returns: option names; their values land in ``task.options`` for the plugin's middleware.

    **Called** by `App.task` when it validates options. **Results**: all collected.
    **Historic**: no. **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_task_options():
            return ["unique_for"]
    """


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------


@hookspec
def kernel_cli_commands() -> Iterable[Any]:
    """Add commands to the ``kernel`` command line.

    :returns: `click.Command` objects, added to the top-level group under their own names.

    **Called** by `kernel.cli.main` before it parses arguments. **Results**: all collected; a
    command whose name is taken is skipped with a warning. **Historic**: no. **Wrappers**: no.

    **Example**::

        @click.command("dlq")
        def dlq(): ...

        @hookimpl
        def kernel_cli_commands():
            return [dlq]
    """


# ----------------------------------------------------------------------------------------------
# Framework hooks: what a framework's plugin (kernel-django) answers for an App.
# ----------------------------------------------------------------------------------------------


@hookspec
def kernel_autodiscover_packages(app: App) -> Iterable[str]:
    """Name the packages whose ``tasks`` modules ``app.autodiscover_tasks()`` imports when it
    is given no packages (a framework's installed apps).

    :param app: the App importing its tasks.
    :returns: package names (``"shop"``, ``"django.contrib.auth"``); a package without the
        module is skipped.

    **Called** by `App.import_discovered`: when a worker starts, or at once with
    ``autodiscover_tasks(force=True)``. **Results**: all collected, in plugin order.
    **Historic**: no. **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_autodiscover_packages(app):
            from django.apps import apps
            return [config.name for config in apps.get_app_configs()]
    """


@hookspec(firstresult=True)
def kernel_on_commit(app: App, callback: Callable[[], object]) -> bool | None:
    """Run `callback` when the current database transaction commits: what
    ``task.delay_on_commit(...)`` sends the task through.

    :param app: the App sending.
    :param callback: sends the task; call it after the commit (at once outside a
        transaction), never if the transaction rolls back.
    :returns: True if this plugin took the callback; None to leave it to another plugin.

    **Called** by `App.on_commit`, from ``delay_on_commit`` and ``apply_async_on_commit``.
    **Results**: first result: stops at the first plugin returning True; with none, the call
    is a `ConfigurationError`. **Historic**: no. **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_on_commit(app, callback):
            from django.db import transaction
            transaction.on_commit(callback)
            return True
    """


# ----------------------------------------------------------------------------------------------
# Lifecycle hooks: observers, called once per event.
# ----------------------------------------------------------------------------------------------


@hookspec
def kernel_app_created(app: App) -> None:
    """An App was created and its plugins registered.

    :param app: the new App; a plugin may read ``app.conf`` or register tasks.

    **Called** by `App.__init__` after plugin registration. **Results**: none used.
    **Historic**: no. **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_app_created(app):
            if app.conf.result_expires is None:
                app.conf.result_expires = 3600
    """


@hookspec
def kernel_worker_init(worker: Worker) -> None:
    """A worker is about to start its bootsteps.

    :param worker: the worker; ``worker.app``, ``worker.options`` are set, nothing is connected.

    **Called** by `Worker.start`, once, before the first bootstep. **Results**: none used.
    **Historic**: no. **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_worker_init(worker):
            logging.getLogger(__name__).info("starting %s", worker.nodename)
    """


@hookspec
def kernel_worker_ready(worker: Worker) -> None:
    """Every bootstep started; the worker consumes from now on.

    :param worker: the running worker.

    **Called** by `Worker.start`, once, after the last bootstep. **Results**: none used.
    **Historic**: no. **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_worker_ready(worker):
            sd_notify("READY=1")
    """


@hookspec
def kernel_worker_shutdown(worker: Worker) -> None:
    """The worker stopped every bootstep and is about to exit.

    :param worker: the stopped worker.

    **Called** by `Worker.stop`, once. **Results**: none used. **Historic**: no.
    **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_worker_shutdown(worker):
            flush_metrics()
    """


# ----------------------------------------------------------------------------------------------
# Task signals: observers called once per message. The kernel collects their implementations
# when a process starts and calls them directly (never through the hook relay), and not at all
# when none is registered. `App.connect(signal, fn)` registers a plain function as one.
# ----------------------------------------------------------------------------------------------


@hookspec
def kernel_before_publish(app: App, envelope: Envelope, queue: str) -> None:
    """A task message is about to be published.

    :param app: the sending App. :param envelope: the message (headers may still be changed).
    :param queue: where it goes.

    **Called** by `App.send_task` / `App.send_many`, in the sending process, once per message,
    before the broker sees it. **Results**: none used. **Historic**: no. **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_before_publish(app, envelope, queue):
            envelope.headers["tenant"] = current_tenant()
    """


@hookspec
def kernel_after_publish(app: App, envelope: Envelope, queue: str) -> None:
    """A task message was published (the broker holds it).

    :param app: the sending App. :param envelope: the message. :param queue: where it went.

    **Called** by `App.send_task` / `App.send_many`, once per message, after the publish (in
    an ``app.pipelined()`` block: later, from the thread that publishes). **Results**: none
    used. **Historic**: no. **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_after_publish(app, envelope, queue):
            sent_counter.labels(envelope.headers["task"]).inc()
    """


@hookspec
def kernel_task_received(request: Request) -> None:
    """A worker took a task message from the broker (before it is run).

    :param request: the parsed headers (id, name, eta, retries...).

    **Called** by the worker's consumer, in the worker's main process, once per message.
    **Results**: none used. **Historic**: no. **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_task_received(request):
            log.info("got %s", request.id)
    """


@hookspec
def kernel_task_prerun(call: Call) -> None:
    """A task is about to run.

    :param call: the run: ``call.request``, ``call.task``, ``call.args``, ``call.kwargs``.

    **Called** by the executor, in the process that runs the task, before the task body.
    **Results**: none used. **Historic**: no. **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_task_prerun(call):
            call.extra["started"] = time.perf_counter()
    """


@hookspec
def kernel_task_postrun(call: Call) -> None:
    """A task ran (whatever its outcome); ``call.state`` and ``call.value`` are set.

    :param call: the run.

    **Called** by the executor, in the process that ran the task, after the outcome-specific
    signal. **Results**: none used. **Historic**: no. **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_task_postrun(call):
            histogram.observe(call.runtime)
    """


@hookspec
def kernel_task_success(call: Call) -> None:
    """A task returned; ``call.value`` is its result.

    :param call: the run.

    **Called** by the executor after a successful run. **Results**: none used.
    **Historic**: no. **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_task_success(call):
            audit(call.request.id, call.value)
    """


@hookspec
def kernel_task_failure(call: Call) -> None:
    """A task raised; ``call.value`` is the exception, ``call.traceback`` its text.

    :param call: the run.

    **Called** by the executor after a failed run (not for a retry). **Results**: none used.
    **Historic**: no. **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_task_failure(call):
            sentry_sdk.capture_exception(call.value)
    """


@hookspec
def kernel_task_retry(call: Call) -> None:
    """A task will be retried (it was sent again); ``call.value`` is the reason.

    :param call: the run.

    **Called** by the executor after a run that ended in a retry. **Results**: none used.
    **Historic**: no. **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_task_retry(call):
            retries.labels(call.request.name).inc()
    """


@hookspec
def kernel_task_revoked(request: Request, reason: str) -> None:
    """A task will not run: revoked, expired or terminated.

    :param request: the task's headers. :param reason: "revoked", "expired" or "terminated".

    **Called** by the worker (consumer or executor) when it skips or stops the task.
    **Results**: none used. **Historic**: no. **Wrappers**: no.

    **Example**::

        @hookimpl
        def kernel_task_revoked(request, reason):
            log.info("%s %s", request.id, reason)
    """
