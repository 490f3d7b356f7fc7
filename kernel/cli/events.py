"""``kernel events``: the cluster, live, from its event stream (kernel's and Celery's workers).

Without options a terminal view (rich): workers with status, pool, concurrency, load and
processed; the newest tasks with state, runtime and worker; totals per state. ``--dump``
prints one line per event (``--json``: one JSON object per line), ``--prometheus PORT``
serves the cluster's metrics (as Flower's ``/metrics``) while it runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from kernel import console
from kernel.cli.root import CliState, app_option
from kernel.errors import ConfigurationError
from kernel.events import EventReceiver, State

if TYPE_CHECKING:
    from rich.console import RenderableType

    from kernel.app import App
    from kernel.events.metrics import EventMetrics

_COLOURS = {"SUCCESS": "green", "FAILURE": "red", "RETRY": "yellow", "REVOKED": "magenta",
            "REJECTED": "red", "STARTED": "cyan", "RECEIVED": "blue", "PENDING": "dim"}
#: seconds between two asks for the pool of workers that appeared.
POOL_ASK = 5.0


@click.command()
@app_option
@click.option("--dump", is_flag=True, help="Print one line per event instead of the view.")
@click.option("--json", "as_json", is_flag=True, help="With --dump: one JSON object a line.")
@click.option("--prometheus", "prometheus_port", type=click.IntRange(0, 65535), metavar="PORT",
              help="Serve the cluster's metrics on PORT (/metrics) while running.")
@click.option("--prometheus-host", default="127.0.0.1", show_default=True, metavar="HOST")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="S",
              help="Stop after S seconds (default: run until Ctrl+C).")
@click.option("--tasks", "shown", default=20, show_default=True, metavar="N",
              help="Tasks the view shows.")
@click.pass_obj
def events(state: CliState, dump: bool, as_json: bool, prometheus_port: int | None,
           prometheus_host: str, timeout: float | None, shown: int) -> None:
    """Watch workers and tasks as their events arrive (start workers with -E for task
    events; `kernel control enable_events` switches them on at run time)."""
    app = state.app()
    if not app.transport.capabilities.broadcast:
        raise ConfigurationError("this broker cannot broadcast, so there are no events to "
                                 "watch; use redis, amqp or the sqlite default")
    cluster = State()
    feeds: list[Callable[[dict[str, Any]], None]] = [cluster.event]
    server = None
    if prometheus_port is not None:
        server, metrics = _serve(cluster, prometheus_host, prometheus_port)
        feeds.append(metrics.event)

    def feed(event: dict[str, Any]) -> None:
        for each in feeds:
            each(event)

    receiver = EventReceiver(app, {"*": feed})
    receiver.listen()
    app.control.heartbeat()  # the live workers show at once, not at their next beat
    try:
        if dump or as_json:
            _dump(receiver, timeout, as_json)
        else:
            _view(app, receiver, cluster, timeout, shown)
    except KeyboardInterrupt:
        pass
    finally:
        receiver.close()
        if server is not None:
            server.shutdown()


def _serve(cluster: State, host: str, port: int) -> tuple[Any, EventMetrics]:
    from prometheus_client import CollectorRegistry, start_http_server

    from kernel.events.metrics import ClusterCollector, EventMetrics

    registry = CollectorRegistry()
    metrics = EventMetrics(registry)
    registry.register(ClusterCollector(cluster))
    try:
        server, _ = start_http_server(port, host, registry)
    except OSError as exc:
        raise ConfigurationError(f"cannot serve metrics on {host}:{port} ({exc}); choose "
                                 f"another --prometheus port") from None
    console.note(f"cluster metrics on http://{host}:{server.server_port}/metrics")
    return server, metrics


def _dump(receiver: EventReceiver, timeout: float | None, as_json: bool) -> None:
    for event in receiver.events(timeout=timeout):
        if as_json:
            click.echo(console.to_json(event))
        else:
            click.echo(dump_line(event))


def dump_line(event: dict[str, Any]) -> str:
    """``<time> <hostname> <type> <the other fields>`` (as ``celery events --dump``)."""
    stamp = event.get("timestamp")
    when = time.strftime("%H:%M:%S", time.localtime(stamp)) if isinstance(
        stamp, (int, float)) else "--:--:--"
    skip = {"type", "hostname", "timestamp", "local_received", "clock", "utcoffset", "pid"}
    rest = " ".join(f"{k}={v!r}" for k, v in event.items() if k not in skip)
    return f"{when} {event.get('hostname', '?')} {event['type']} {rest}".rstrip()


def _view(app: App, receiver: EventReceiver, cluster: State, timeout: float | None,
          shown: int) -> None:
    from rich.live import Live

    pools: dict[str, str] = {}
    asker = _PoolAsker(app, cluster, pools)
    asker.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    with Live(render(cluster, pools, shown), refresh_per_second=4,
              console=console.stdout()) as live:
        while deadline is None or time.monotonic() < deadline:
            left = 0.25 if deadline is None else min(0.25, deadline - time.monotonic())
            for _ in receiver.events(timeout=max(0.0, left)):
                pass
            live.update(render(cluster, pools, shown))
    asker.stop()


class _PoolAsker(threading.Thread):
    """Asks each worker that appears for its pool (heartbeats do not carry it)."""

    def __init__(self, app: App, cluster: State, pools: dict[str, str]) -> None:
        super().__init__(name="kernel-events-pools", daemon=True)
        self.app, self.cluster, self.pools = app, cluster, pools
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(0.5):
            workers, _, _ = self.cluster.snapshot(tasks=0)
            new = [w.hostname for w in workers if w.hostname not in self.pools]
            if not new:
                continue
            try:
                replies = self.app.control.inspect(destination=new, timeout=1.0).stats() or {}
            except Exception:  # noqa: BLE001 - the view goes on without the pool column
                replies = {}
            for node in new:
                pool = (replies.get(node) or {}).get("pool") or {}
                kind = str(pool.get("implementation", "?")).rpartition(":")[2]
                self.pools[node] = f"{kind} x{pool.get('max-concurrency', '?')}" if pool \
                    else "?"
            self._stop.wait(POOL_ASK)

    def stop(self) -> None:
        self._stop.set()


def render(cluster: State, pools: dict[str, str], shown: int = 20) -> RenderableType:
    """The view of `cluster` (a rich renderable)."""
    workers, tasks, totals = cluster.snapshot(tasks=shown)
    now = time.time()
    wt = Table("worker", "status", "pool", "load", "active", "processed", title="workers",
               title_justify="left", expand=True)
    for w in sorted(workers, key=lambda w: w.hostname):
        alive = w.alive(now)
        load = " ".join(f"{x:.2f}" for x in w.loadavg[:3]) if w.loadavg else "-"
        wt.add_row(escape(w.hostname), Text("online" if alive else "offline",
                                            style="green" if alive else "red"),
                   escape(pools.get(w.hostname, "…")), load, str(w.active), str(w.processed))
    tt = Table("task id", "name", "state", "runtime", "worker", title="tasks",
               title_justify="left", expand=True)
    for t in tasks:
        runtime = f"{t.runtime:.3f} s" if t.runtime is not None else ""
        tt.add_row(t.uuid, escape(t.name or "?"), Text(t.state, style=_COLOURS.get(t.state,
                                                                                    "")),
                   runtime, escape(t.worker or ""))
    line = "  ".join(f"{state}: {count}" for state, count in sorted(totals.items())) or \
        "no task events yet (start workers with -E, or: kernel control enable_events)"
    return Group(wt, tt, Text(f"totals  {line}   events: {cluster.event_count}"))
