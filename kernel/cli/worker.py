"""``kernel worker``: run a worker in the foreground."""

from __future__ import annotations

import os

import click

from kernel.cli.root import CliState, app_option
from kernel.cli.running import Running, log_setup, prepare, running_options

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def split_queues(value: str | None) -> list[str] | None:
    """``-Q a,b`` → ["a", "b"]; None when not given (the app's default queue)."""
    if value is None:
        return None
    queues = [q.strip() for q in value.split(",") if q.strip()]
    if not queues:
        raise click.BadParameter("give at least one queue name, e.g. -Q celery,emails")
    return queues


def _bounds(value: str | None) -> tuple[int, int] | None:
    """``--autoscale 10,3`` → (10, 3); ``10`` alone is (10, 1)."""
    if value is None:
        return None
    parts = value.split(",")
    try:
        maximum, minimum = int(parts[0]), int(parts[1]) if len(parts) > 1 else 1
    except ValueError:
        raise click.BadParameter(f"{value!r}: give MAX,MIN, e.g. 10,3") from None
    if len(parts) > 2 or not 1 <= minimum <= maximum:
        why = f" (here MIN {minimum} is above MAX {maximum})" if minimum > maximum >= 1 else ""
        raise click.BadParameter(f"{value!r}: give MAX,MIN with MAX >= MIN >= 1{why}")
    return maximum, minimum


def patch_early(state: CliState, pool: str | None) -> None:
    """``-P NAME`` of a pool whose plugin changes the process first (gevent's and eventlet's
    monkey-patching, `PoolSpec.patch`): done here, before ``-A`` imports the app, so that
    nothing the app, its broker client or a thread creates is left unpatched. A pool no
    installed plugin registers (one the app itself registers) is left to the worker, which
    refuses to patch once threads or sockets exist."""
    if pool is None:
        return
    from kernel.plugins import PluginManager

    specs = PluginManager(disabled=state.disabled).pools
    if pool in specs:
        patch = specs.get(pool).patch
        if patch is not None:
            patch()


@click.command()
@app_option
@click.option("-P", "--pool", metavar="NAME",
              help="Execution pool: prefork, threads, solo, asyncio, or one from a plugin.")
@click.option("-c", "--concurrency", type=click.IntRange(min=1), metavar="N",
              help="Processes/threads in the pool (default: the number of CPUs).")
@click.option("-Q", "--queues", metavar="Q1,Q2", help="Queues to consume, in priority order.")
@click.option("--max-tasks-per-child", type=click.IntRange(min=1), metavar="N",
              help="Replace a pool process after it ran N tasks.")
@click.option("--max-memory-per-child", type=click.IntRange(min=1), metavar="KiB",
              help="Replace a pool process once its resident memory passes KiB.")
@click.option("--prefetch-multiplier", type=click.IntRange(min=1), metavar="N",
              help="Messages held per pool slot.")
@click.option("--shutdown-timeout", type=click.FloatRange(min=0), metavar="S",
              help="Seconds a warm shutdown waits for running tasks.")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), metavar="S",
              help="Hard time limit for tasks that set none (see docs/user-guide/time-limits.md).")
@click.option("--soft-time-limit", type=click.FloatRange(min=0, min_open=True), metavar="S",
              help="Soft time limit for tasks that set none.")
@click.option("-l", "--loglevel", type=click.Choice(LOG_LEVELS, case_sensitive=False),
              default="INFO", show_default=True)
@click.option("-n", "--nodename", metavar="NAME",
              help="Worker name (default: kernel@%h; %h the host name, %n without its domain, "
                   "%d the domain).")
@click.option("--heartbeat-file", metavar="PATH",
              help="Touch PATH every 2 s while the worker is alive and not stuck (for a "
                   "liveness probe: the file's age tells a stuck worker from a live one).")
@click.option("-E", "--task-events", is_flag=True,
              help="Send task events (monitoring: kernel events, Flower).")
@click.option("--heartbeat-interval", type=click.FloatRange(min=0, min_open=True), metavar="S",
              help="Seconds between worker heartbeats (default 2).")
@click.option("--without-mailbox", is_flag=True, help="Answer no remote-control commands.")
@click.option("--autoscale", metavar="MAX,MIN", callback=lambda c, p, v: _bounds(v),
              help="Grow the pool up to MAX while busy, shrink it down to MIN when idle.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), metavar="PORT",
              help="Serve Prometheus metrics on PORT (/metrics).")
@click.option("--metrics-host", default="127.0.0.1", show_default=True, metavar="HOST",
              help="Address the metrics are served on (0.0.0.0: every interface).")
@click.option("-B", "--beat", "embed_beat", is_flag=True,
              help="Run the beat service (periodic tasks) inside this worker too.")
@click.option("--graph", is_flag=True, help="Print the bootstep graph as DOT and exit.")
@running_options
@click.pass_obj
def worker(state: CliState, pool: str | None, concurrency: int | None, queues: str | None,
           max_tasks_per_child: int | None, max_memory_per_child: int | None,
           prefetch_multiplier: int | None, shutdown_timeout: float | None,
           time_limit: float | None, soft_time_limit: float | None, loglevel: str,
           nodename: str | None, heartbeat_file: str | None, task_events: bool,
           heartbeat_interval: float | None, without_mailbox: bool,
           autoscale: tuple[int, int] | None, metrics_port: int | None,
           metrics_host: str, embed_beat: bool, graph: bool, running: Running) -> None:
    """Consume tasks and run them. SIGTERM stops warmly (running tasks finish); a second
    SIGTERM or Ctrl+C stops at once and gives unfinished tasks back to the broker."""
    patch_early(state, pool)
    app = state.require_app("worker")
    from kernel.worker import Worker

    conf = app.conf
    # The worker's defaults for tasks without limits of their own; the consumer reads them in
    # this process and hands each job its limits, so pool processes need not know.
    if time_limit is not None:
        conf.task_time_limit = time_limit
    if soft_time_limit is not None:
        conf.task_soft_time_limit = soft_time_limit
    if task_events:
        conf.worker_send_task_events = True
    if heartbeat_interval is not None:
        conf.worker_heartbeat_interval = heartbeat_interval
    if without_mailbox:
        conf.worker_enable_remote_control = False
    if embed_beat:
        conf.worker_beat = True
    if conf.worker_beat:
        app.beat.configured()  # a schedule beat cannot keep stops the worker before it starts
    if concurrency:
        conf.worker_concurrency = concurrency  # stores size their connection pools by it
    pool = pool or conf.worker_pool
    app.plugins.pools.get(pool)  # an unknown pool fails here, before the banner
    from kernel.worker.nodenames import host_format

    nodename = host_format(nodename or "kernel@%h")
    logs = log_setup(running, loglevel.upper())
    w = Worker(
        app,
        pool=pool,
        concurrency=concurrency or (None if autoscale else conf.worker_concurrency
                                    or os.cpu_count() or 1),
        queues=split_queues(queues),
        max_tasks_per_child=max_tasks_per_child,
        max_memory_per_child=max_memory_per_child,
        prefetch_multiplier=prefetch_multiplier,
        shutdown_timeout=shutdown_timeout,
        nodename=nodename,
        loglevel=loglevel.upper(),
        logs=logs,
        heartbeat_file=heartbeat_file,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
        autoscale=autoscale,
    )
    if graph:
        click.echo(w.graph_dot())
        return
    prepare(running, w.nodename, logs)
    click.get_current_context().exit(w.run())
