"""The ``kernel worker`` options for running a worker as a service: its log file and format,
its pid file, detaching, the user, group, umask and directory it runs with
(``kernel multi`` starts its nodes with them). `prepare` applies them before the worker
starts, in the order that gives every mistake its sentence on the terminal."""

from __future__ import annotations

import atexit
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from kernel import console

if TYPE_CHECKING:
    from kernel.worker.logs import LogSetup

F = TypeVar("F", bound=Callable[..., Any])

#: --log-format's choices (`kernel.worker.logs`).
FORMATS = ("text", "json")
#: where a detached worker logs when no --logfile is given (Celery multi's default): one file
#: per process, in the working directory.
DETACHED_LOGFILE = "%n%I.log"


@dataclass(frozen=True)
class Running:
    logfile: str | None = None
    log_format: str = "text"
    pidfile: str | None = None
    detach: bool = False
    uid: str | None = None
    gid: str | None = None
    umask: str | None = None
    workdir: str | None = None


_OPTIONS = [
    click.option("-f", "--logfile", metavar="PATH",
                 help="Log to PATH instead of stderr (%n, %i, %I... as Celery's: see "
                      "docs/user-guide/running-workers.md). Detached: %n%I.log by default."),
    click.option("--log-format", type=click.Choice(FORMATS), default="text", show_default=True,
                 help="json: one JSON object a line, with task_id and task_name on the lines "
                      "a task logs."),
    click.option("--pidfile", metavar="PATH",
                 help="Write the worker's process id to PATH; a running worker's pid file "
                      "refuses a second worker, a dead one's is taken over."),
    click.option("-D", "--detach", is_flag=True, help="Run in the background."),
    click.option("--uid", metavar="USER", help="Run as USER (a name or number; needs root)."),
    click.option("--gid", metavar="GROUP", help="Run with GROUP (default: USER's group)."),
    click.option("--umask", metavar="MASK", help="The umask files are created with (octal)."),
    click.option("--workdir", metavar="DIR",
                 help="Change to DIR first; relative log and pid file paths are under it."),
]


def running_options(command: F) -> F:
    """Add the options above to `command`, which receives them as one `running` argument."""
    names = [f.name for f in Running.__dataclass_fields__.values()]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        running = Running(**{name: kwargs.pop(name) for name in names})
        return command(*args, running=running, **kwargs)

    for option in reversed(_OPTIONS):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


def log_setup(running: Running, level: str) -> LogSetup:
    """How the worker logs: the options' file (a detached worker's default one) and format."""
    from kernel.worker.logs import LogSetup

    logfile = running.logfile or (DETACHED_LOGFILE if running.detach else None)
    where = Path(running.workdir or ".")  # relative paths are under --workdir
    return LogSetup(level, str((where / logfile).absolute()) if logfile else None,
                    running.log_format)


def prepare(running: Running, nodename: str, logs: LogSetup) -> None:
    """Before the worker starts: switch user and group, change directory and umask, check the
    log file opens and the pid file is free, detach, take the pid file. Every refusal is a
    `WorkerSetupError` sentence, given before detaching."""
    # Here, not at the top: the command line starts without importing the worker.
    from kernel.worker import daemon
    from kernel.worker.nodenames import node_format
    from kernel.worker.pidfile import Pidfile

    uid, gid = daemon.user_ids(running.uid, running.gid)
    umask = None if running.umask is None else daemon.parse_umask(running.umask)
    daemon.drop_privileges(uid, gid)
    daemon.change_directory(running.workdir)
    if umask is not None:
        os.umask(umask)
    logs.check(nodename)
    pidfile = None
    if running.pidfile is not None:
        pidfile = Pidfile(node_format(running.pidfile, nodename))
        pidfile.check()
        pidfile.writable()
    if running.detach:
        daemon.detach(logs.path(nodename))
    if pidfile is not None:
        note = pidfile.acquire()
        if note:
            console.warning(note)
        atexit.register(pidfile.release)
