"""``kernel inspect COMMAND`` and ``kernel control COMMAND ARGS...``: remote control from the
shell, answered by kernel's and Celery's workers alike.

Both exit with status 1 when no worker answered (or not every ``--destination`` did), so
``kernel inspect ping -d kernel@$HOSTNAME`` serves as a health check (a Kubernetes liveness
probe, say), and with status 1 when a worker answered with an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from rich.markup import escape
from rich.pretty import Pretty

from kernel import console
from kernel.cli.root import CliState, app_option
from kernel.errors import ConfigurationError

INSPECT = ("ping", "stats", "active_queues", "registered", "active", "reserved", "scheduled",
           "revoked", "conf", "query_task", "report", "clock")

#: a control command's positional arguments: (name, how to read it, how many: 1 or -1 all).
Arg = tuple[str, Callable[[str], Any], int]
CONTROL: dict[str, tuple[Arg, ...]] = {
    "revoke": (("task_id", str, -1),),
    "terminate": (("signal", str, 1), ("task_id", str, -1)),
    "rate_limit": (("task_name", str, 1), ("rate_limit", str, 1)),
    "time_limit": (("task_name", str, 1), ("soft", float, 1), ("hard", float, 1)),
    "enable_events": (),
    "disable_events": (),
    "heartbeat": (),
    "pool_grow": (("n", int, 1),),
    "pool_shrink": (("n", int, 1),),
    "pool_restart": (),
    "autoscale": (("max", int, 1), ("min", int, 1)),
    "shutdown": (),
    "add_consumer": (("queue", str, 1),),
    "cancel_consumer": (("queue", str, 1),),
}
_DEFAULTS = {"pool_grow": {"n": 1}, "pool_shrink": {"n": 1}}


def _targeting(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed((
        click.option("-d", "--destination", multiple=True, metavar="NODE",
                     help="Only this node (repeat for several; default: every node)."),
        click.option("-t", "--timeout", type=click.FloatRange(min=0, min_open=True),
                     default=1.0, show_default=True, help="Seconds to wait for answers."),
        click.option("--pattern", metavar="GLOB", help="Only nodes whose name matches."),
        click.option("--json", "as_json", is_flag=True, help="Print the answers as JSON."),
        app_option,
    )):
        command = option(command)
    return command


@click.command(context_settings={"ignore_unknown_options": False})
@click.argument("command", type=click.Choice(INSPECT))
@click.argument("ids", nargs=-1, metavar="[TASK_ID]...")
@_targeting
@click.pass_obj
def inspect(state: CliState, command: str, ids: tuple[str, ...], destination: tuple[str, ...],
            timeout: float, pattern: str | None, as_json: bool) -> None:
    """Ask workers what they are doing: ping, stats, active, reserved, scheduled, revoked,
    registered, active_queues, conf, query_task TASK_ID..., report, clock."""
    if ids and command != "query_task":
        raise click.UsageError(f"inspect {command} takes no arguments")
    arguments: dict[str, Any] = {"ids": list(ids)} if command == "query_task" else {}
    if command == "active":
        arguments["safe"] = True
    _ask(state, command, arguments, destination, timeout, pattern, as_json)


@click.command()
@click.argument("command", type=click.Choice(sorted(CONTROL)))
@click.argument("args", nargs=-1)
@_targeting
@click.pass_obj
def control(state: CliState, command: str, args: tuple[str, ...], destination: tuple[str, ...],
            timeout: float, pattern: str | None, as_json: bool) -> None:
    """Tell workers to act: revoke ID..., terminate SIGNAL ID..., rate_limit TASK RATE,
    time_limit TASK SOFT HARD, pool_grow [N], pool_shrink [N], autoscale MAX MIN,
    add_consumer QUEUE, cancel_consumer QUEUE, enable_events, disable_events, heartbeat,
    pool_restart, shutdown."""
    arguments = _parse(command, list(args))
    if command in ("revoke", "terminate"):
        app = state.app()
        if app.conf.result_backend:  # the log too: workers started later skip them as well
            from kernel.control import revoke

            revoke(app, arguments["task_id"], terminate=command == "terminate")
    _ask(state, command, arguments, destination, timeout, pattern, as_json)


def _parse(command: str, args: list[str]) -> dict[str, Any]:
    spec = CONTROL[command]
    arguments: dict[str, Any] = dict(_DEFAULTS.get(command, {}))
    rest = list(args)
    for name, read, count in spec:
        if not rest:
            if name in arguments:
                continue
            wanted = " ".join(n.upper() for n, _, _ in spec)
            raise click.UsageError(f"control {command} needs {wanted}")
        values, rest = (rest, []) if count == -1 else (rest[:1], rest[1:])
        try:
            parsed = [read(v) for v in values]
        except ValueError:
            raise click.UsageError(f"control {command}: {name.upper()} must be a "
                                   f"{read.__name__}, got {' '.join(values)!r}") from None
        arguments[name] = parsed if count == -1 else parsed[0]
    if rest:
        raise click.UsageError(f"control {command}: unexpected {' '.join(rest)!r}")
    return arguments


def _ask(state: CliState, command: str, arguments: dict[str, Any],
         destination: tuple[str, ...], timeout: float, pattern: str | None,
         as_json: bool) -> None:
    app = state.app()
    if not app.transport.capabilities.broadcast:
        raise ConfigurationError("this broker cannot broadcast, so workers cannot be asked; "
                                 "use redis, amqp or the sqlite default")
    replies = app.control.broadcast(command, arguments, destination=list(destination) or None,
                                    reply=True, timeout=timeout, pattern=pattern,
                                    matcher="glob" if pattern else None)
    answers = {node: answer for reply in replies for node, answer in reply.items()}
    out = console.stdout()
    if as_json:
        click.echo(console.to_json(answers, indent=2))
    else:
        for node, answer in sorted(answers.items()):
            out.print(f"[bold]{escape(node)}[/]: ", end="")
            if isinstance(answer, dict) and set(answer) <= {"ok", "error"} and answer:
                word = "ok" if "ok" in answer else "error"
                colour = "green" if word == "ok" else "red"
                out.print(f"[{colour}]{escape(str(answer[word]))}[/]", soft_wrap=True)
            else:
                out.print(Pretty(answer))
    missing = [d for d in destination if d not in answers]
    if not answers or missing:
        who = ", ".join(missing) if missing else "no worker"
        console.error(f"{who} answered {command} within {timeout} s; is the worker running "
                      f"and on this broker ({app.conf.broker_url.partition('://')[0]})?")
        raise SystemExit(1)
    if any(isinstance(a, dict) and "error" in a for a in answers.values()):
        raise SystemExit(1)
