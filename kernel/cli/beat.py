"""``kernel beat``: run the periodic-task service, preview its fire times, show its status, and
change the schedule store's entries (``add``, ``remove``, ``enable``, ``disable``, ``list``)."""

from __future__ import annotations

import json
import signal
from datetime import datetime
from types import FrameType
from typing import Any

import click

from kernel.cli.root import CliState, app_option
from kernel.cli.worker import LOG_LEVELS
from kernel.errors import ConfigurationError


@click.group(invoke_without_command=True)
@app_option
@click.option("--preview", type=click.IntRange(min=1), metavar="N",
              help="Print the next N fire times of every entry and exit (nothing is sent).")
@click.option("--status", is_flag=True,
              help="Print which process leads and when each entry runs next, and exit.")
@click.option("--json", "as_json", is_flag=True, help="With --preview or --status: JSON.")
@click.option("-l", "--loglevel", type=click.Choice(LOG_LEVELS, case_sensitive=False),
              default="INFO", show_default=True)
@click.pass_context
def beat(ctx: click.Context, preview: int | None, status: bool, as_json: bool,
         loglevel: str) -> None:
    """Send the app's periodic tasks. Run as many as you like (on any hosts sharing the
    schedule store): one leads, the others take over within seconds when it dies, and each
    tick is sent once. SIGTERM or Ctrl+C stops it."""
    if ctx.invoked_subcommand is not None:
        return
    state: CliState = ctx.obj
    app = state.require_app("beat")
    if preview is not None:
        times = app.beat.preview(preview)
        if as_json:
            click.echo(json.dumps(times, indent=2))
            return
        for name, upcoming in times.items():
            click.echo(f"{name}:")
            for when in upcoming or ["(never again)"]:
                click.echo(f"  {when}")
        return
    if status:
        report = app.beat.status()
        if as_json:
            click.echo(json.dumps(report, indent=2))
            return
        _print_status(report)
        return
    from kernel.beat.service import BeatService
    from kernel.worker.logs import setup_logging

    setup_logging(loglevel)
    service = BeatService(app)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        service.stop(timeout=0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    service.run()


def _print_status(report: dict[str, Any]) -> None:
    leader = report["leader"]
    click.echo(f"leader: {leader['owner']} (token {leader['token']}, lease ends in "
               f"{leader['expires_in']:.1f} s)" if leader else "leader: none (no beat runs)")
    for row in report["entries"]:
        flag = "" if row["enabled"] else " [disabled]"
        click.echo(f"{row['name']}{flag}: {row['task']}, {row['schedule']} ({row['source']})")
        click.echo(f"  next run {row['next_run'] or '-'}, last run {row['last_run'] or '-'}, "
                   f"{row['run_count']} run(s)")


def _json_value(what: str, text: str | None, kind: type) -> Any:
    if text is None:
        return kind()
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"{what} must be JSON ({exc})") from None
    if not isinstance(value, kind):
        raise click.BadParameter(f"{what} must be a JSON {'list' if kind is list else 'object'}")
    return value


def _schedule(every: float | None, cron: str | None, at: str | None) -> Any:
    given = [x for x in (every, cron, at) if x is not None]
    if len(given) != 1:
        raise click.UsageError("give the schedule once: --every SECONDS, --crontab "
                               "'m h dom mon dow' or --at ISO-TIME")
    if every is not None:
        return every
    if cron is not None:
        from kernel.schedules import crontab

        try:
            return crontab.from_string(cron)
        except ValueError as exc:
            raise ConfigurationError(f"--crontab {cron!r}: {exc}") from None
    from kernel.schedules import clocked

    assert at is not None
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        raise click.BadParameter(f"{at!r} is not an ISO time, e.g. "
                                 f"2026-01-01T09:00:00+00:00") from None
    return clocked(when)


@beat.command("add")
@app_option
@click.argument("name")
@click.argument("task")
@click.option("--every", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS")
@click.option("--crontab", "cron", metavar="'m h dom mon dow'")
@click.option("--at", metavar="ISO-TIME", help="Once, at this time.")
@click.option("--args", "args_json", metavar="JSON", help="Positional arguments: a JSON list.")
@click.option("--kwargs", "kwargs_json", metavar="JSON", help="Keyword arguments: an object.")
@click.option("--options", "options_json", metavar="JSON",
              help="Send options (queue, priority, expires, ...): a JSON object.")
@click.option("--disabled", is_flag=True, help="Add it disabled.")
@click.pass_obj
def add(state: CliState, name: str, task: str, every: float | None, cron: str | None,
        at: str | None, args_json: str | None, kwargs_json: str | None,
        options_json: str | None, disabled: bool) -> None:
    """Add (or replace) the dynamic entry NAME sending TASK; running beats pick it up within
    one loop."""
    entry = state.app().beat.add(
        name, task, _schedule(every, cron, at), args=_json_value("--args", args_json, list),
        kwargs=_json_value("--kwargs", kwargs_json, dict),
        options=_json_value("--options", options_json, dict), enabled=not disabled)
    click.echo(f"added {entry.name}: {entry.task}, {entry.schedule.describe()}")


@beat.command("remove")
@app_option
@click.argument("name")
@click.pass_obj
def remove(state: CliState, name: str) -> None:
    """Remove the dynamic entry NAME and its run history."""
    state.app().beat.remove(name)
    click.echo(f"removed {name}")


@beat.command("enable")
@app_option
@click.argument("name")
@click.pass_obj
def enable(state: CliState, name: str) -> None:
    """Send NAME's ticks again, from its next due time on."""
    state.app().beat.enable(name)
    click.echo(f"enabled {name}")


@beat.command("disable")
@app_option
@click.argument("name")
@click.pass_obj
def disable(state: CliState, name: str) -> None:
    """Send none of NAME's ticks until it is enabled."""
    state.app().beat.disable(name)
    click.echo(f"disabled {name}")


@beat.command("list")
@app_option
@click.option("--json", "as_json", is_flag=True, help="JSON.")
@click.pass_obj
def list_entries(state: CliState, as_json: bool) -> None:
    """Every entry: the store's and the app's configured ones."""
    entries = state.app().beat.list()
    if as_json:
        click.echo(json.dumps([{"name": e.name, **e.definition(), "enabled": e.enabled,
                                "source": e.source} for e in entries], indent=2))
        return
    for e in entries:
        flag = "" if e.enabled else " [disabled]"
        click.echo(f"{e.name}{flag}: {e.task}, {e.schedule.describe()} ({e.source})")
