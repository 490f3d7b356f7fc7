"""Client commands: ``kernel call``, ``kernel result``, ``kernel purge``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape

from kernel import states
from kernel import console
from kernel.cli.root import CliState, app_option
from kernel.cli.worker import split_queues
from kernel.parsing import mask_url
from kernel.errors import MissingCapability
from kernel.records import exception_from_dict

if TYPE_CHECKING:
    from kernel.app import App

#: exit status of a command whose task failed (distinct from 2, kernel's own errors).
EXIT_TASK_FAILED = 1

_STATE_STYLE = {states.SUCCESS: "green", states.FAILURE: "red", states.REVOKED: "red"}


def parse_arg(text: str) -> Any:
    """A positional argument: JSON when it parses (``2``, ``true``, ``[1, 2]``, ``"2"``),
    otherwise the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _parse_kwargs(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, Any]:
    if value is None:
        return {}
    try:
        kwargs = json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON ({exc}); e.g. --kwargs '{{\"x\": 1}}'",
                                 ctx, param) from None
    if not isinstance(kwargs, dict):
        raise click.BadParameter("must be a JSON object, e.g. --kwargs '{\"x\": 1}'", ctx, param)
    return kwargs


def _parse_eta(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        eta = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 time, e.g. 2030-01-31T12:00:00"
                                 f"+00:00", ctx, param) from None
    # A time without a zone is read as local time, as a person typing it means it.
    return eta if eta.tzinfo else eta.astimezone()


def result_record(app: App, task_id: str) -> dict[str, Any]:
    """The stored record of a task (Celery's format), or one with the state `AsyncResult`
    gives a task without a record (UNKNOWN, or PENDING when sends are not recorded)."""
    return app.backend.get_meta(task_id) or app.backend.record(
        task_id, app.AsyncResult(task_id).state, None)


def show_failure(record: dict[str, Any]) -> None:
    """The task's own traceback (if stored), then its exception in red, on stderr."""
    err = console.stderr()
    if record.get("traceback"):
        err.print(escape(str(record["traceback"]).rstrip()), style="dim", soft_wrap=True)
    info = record.get("result")
    exc = exception_from_dict(info) if isinstance(info, dict) else None
    text = f"{type(exc).__name__}: {exc}" if exc is not None else str(info)
    err.print(f"[red]{escape(text)}[/]", soft_wrap=True)


def exit_status(record: dict[str, Any]) -> int:
    return EXIT_TASK_FAILED if record.get("status") in states.PROPAGATE_STATES else 0


@click.command(context_settings={"show_default": True})
@app_option
@click.argument("task_name", metavar="TASK")
@click.argument("args", nargs=-1)
@click.option("--kwargs", callback=_parse_kwargs, metavar="JSON",
              help="Keyword arguments as a JSON object.")
@click.option("--countdown", type=click.FloatRange(min=0), metavar="S",
              help="Run no earlier than S seconds from now.")
@click.option("--eta", callback=_parse_eta, metavar="ISO",
              help="Run no earlier than this time (ISO-8601; without a zone: local time).")
@click.option("--queue", metavar="Q", help="Queue to send to (default: the task's or the app's).")
@click.option("--priority", type=click.IntRange(0, 9), metavar="0-9",
              help="Higher runs first, where the broker has priorities.")
@click.option("--wait", is_flag=True, help="Wait for the result and print it.")
@click.option("--timeout", type=click.FloatRange(min=0), metavar="S",
              help="With --wait: give up after S seconds (exit status 2).")
@click.pass_obj
def call(state: CliState, task_name: str, args: tuple[str, ...], kwargs: dict[str, Any],
         countdown: float | None, eta: datetime | None, queue: str | None, priority: int | None,
         wait: bool, timeout: float | None) -> None:
    """Send TASK (by name) with ARGS and print its id.

    Each ARG is read as JSON if it parses, else taken as a string; put -- before arguments that
    start with a dash: kernel call proj.add -- -1 2. With --wait, print the result; a failed
    task prints its error and exits with status 1.
    """
    if countdown is not None and eta is not None:
        raise click.UsageError("give --countdown or --eta, not both")
    if timeout is not None and not wait:
        raise click.UsageError("--timeout applies only with --wait")
    app = state.app()
    result = app.send_task(task_name, [parse_arg(a) for a in args], kwargs, countdown=countdown,
                           eta=eta, queue=queue, priority=priority)
    click.echo(result.id)
    if wait:
        result.get(timeout=timeout, propagate=False)
        record = result_record(app, result.id)
        if record.get("status") == states.SUCCESS:
            click.echo(console.to_json(record.get("result")))
        else:
            show_failure(record)
        click.get_current_context().exit(exit_status(record))


@click.command()
@app_option
@click.argument("task_id", metavar="ID")
@click.option("--wait", is_flag=True, help="Wait until the task has finished.")
@click.option("--timeout", type=click.FloatRange(min=0), metavar="S",
              help="With --wait: give up after S seconds (exit status 2).")
@click.option("--json", "as_json", is_flag=True, help="Print the stored record as JSON.")
@click.pass_obj
def result(state: CliState, task_id: str, wait: bool, timeout: float | None,
           as_json: bool) -> None:
    """Show a task's state and its result or error (exit status 1 if it failed)."""
    app = state.app()
    if wait:
        app.AsyncResult(task_id).get(timeout=timeout, propagate=False)
    record = result_record(app, task_id)
    status = str(record.get("status"))
    if as_json:
        click.echo(console.to_json(record, indent=2))
    else:
        out = console.stdout()
        out.print(f"state: [{_STATE_STYLE.get(status, 'yellow')}]{status}[/]")
        if status == states.SUCCESS:
            out.print(f"result: {escape(console.to_json(record.get('result')))}", soft_wrap=True)
        elif status in states.EXCEPTION_STATES:
            show_failure(record)
        if record.get("date_done"):
            out.print(f"done: {record['date_done']}")
    click.get_current_context().exit(exit_status(record))


@click.command()
@app_option
@click.option("-Q", "--queues", metavar="Q1,Q2", help="Queues to empty (default: the app's).")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def purge(state: CliState, queues: str | None, force: bool) -> None:
    """Delete every waiting message of the queues (tasks already running are not touched)."""
    app = state.app()
    names = split_queues(queues) or [app.conf.task_default_queue]
    transport = app.transport
    broker = mask_url(app.conf.broker_url)
    if not transport.capabilities.inspect_queues:
        raise MissingCapability(f"the broker {broker} cannot purge queues")
    if not force:
        waiting = ", ".join(f"{q} ({transport.size(q)} waiting)" for q in names)
        click.confirm(f"Delete every message in {waiting} on {broker}?", abort=True)
    out = console.stdout()
    for queue in names:
        deleted = transport.purge(queue)
        out.print(f"{escape(queue)}: {deleted} message{'' if deleted == 1 else 's'} deleted")

