"""``kernel multi start|stop|stopwait|restart|kill|show NAMES [worker options]``: several
detached workers on one machine, each a node with its own name, pid file and log file, as
Celery's ``celery multi`` runs them.

Names: a number (``3``: ``kernel1@host`` .. ``kernel3@host``, ``--range-prefix`` for another
prefix than ``kernel``), or names (``w1 w2``; ``w1@host`` as written; ``--hostname`` for
another host than this machine's). After the names come the workers' options, given to every
node, and per-node ones: ``-c:1 3`` (node 1), ``-Q:1-2 a`` (nodes 1 and 2), ``--loglevel:w2=DEBUG``
(node w2), which win over the same option given to all. ``%n``, ``%h``, ``%d`` and ``%p``/``%N``
in any option are the node's (see `kernel.worker.nodenames`); ``%i``/``%I`` are left to each
worker. Pid files default to ``%n.pid``, log files to ``%n%I.log``, in the current directory
(or ``--workdir``).

``stop`` sends SIGTERM (a warm shutdown) and returns; ``stopwait`` waits until the workers
exited (their running tasks finished); ``restart`` stops each node, waiting, and starts it
again; ``kill`` sends SIGKILL; ``show`` prints the command lines ``start`` runs.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import click

from kernel.cli.running import DETACHED_LOGFILE

# kernel.worker is imported inside the functions below: the command line starts without it.
ACTIONS = ("start", "stop", "stopwait", "restart", "kill", "show")
DEFAULT_PIDFILE = "%n.pid"
#: seconds `start` waits for a detached node to write its pid file.
START_TIMEOUT = 30.0
#: options of `kernel multi` itself: not given to the workers.
OWN = ("--range-prefix", "--hostname")
#: ``-c:1-3 10`` / ``--loglevel:w1=DEBUG``: an option for some nodes only.
_SCOPED = re.compile(r"^(-{1,2}[A-Za-z][\w-]*):([^=]+)(?:=(.*))?$")


@dataclass
class Node:
    name: str
    #: the worker options for this node: those for all, then its own (which win).
    argv: list[str] = field(default_factory=list)

    def option(self, *names: str) -> str | None:
        """The last value given to one of `names` (``--pidfile X`` or ``--pidfile=X``)."""
        found = None
        for i, token in enumerate(self.argv):
            key, eq, value = token.partition("=")
            if key in names:
                found = value if eq else (self.argv[i + 1] if i + 1 < len(self.argv) else None)
        return found

    def path(self, *names: str, default: str) -> Path:
        from kernel.worker.nodenames import node_format

        path = Path(node_format(self.option(*names) or default, self.name, processes=False))
        workdir = self.option("--workdir")
        return path if path.is_absolute() or workdir is None else Path(workdir) / path

    @property
    def pidfile(self) -> Path:
        return self.path("--pidfile", default=DEFAULT_PIDFILE)

    @property
    def pid(self) -> int | None:
        """The running worker's process id; None when the node is down."""
        from kernel.worker.pidfile import alive, read_pid

        pid = read_pid(self.pidfile)
        return pid if pid is not None and alive(pid) else None

    def command(self) -> list[str]:
        from kernel.worker.nodenames import node_format

        extra = [] if self.option("--logfile", "-f") else ["--logfile", DETACHED_LOGFILE]
        if self.option("--pidfile") is None:
            extra += ["--pidfile", DEFAULT_PIDFILE]
        argv = [node_format(arg, self.name, processes=False) for arg in [*extra, *self.argv]]
        return [sys.executable, "-m", "kernel", "worker", "--detach", "-n", self.name, *argv]


def split(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """NAMES before the first option, the options after."""
    for i, token in enumerate(argv):
        if token.startswith("-"):
            return list(argv[:i]), list(argv[i:])
    return list(argv), []


def nodes(argv: Sequence[str]) -> list[Node]:
    """The nodes `argv` (NAMES [options]) names, each with its worker options."""
    from kernel.worker.nodenames import host_format

    names, options = split(argv)
    if not names:
        raise click.UsageError("name the nodes: a number (kernel multi start 3) or names "
                               "(kernel multi start w1 w2)")
    shared, scoped = _options(options)
    own = dict(_own(shared))
    shared = [t for t in _drop_own(shared)]
    host = own.get("--hostname") or socket.gethostname()
    if len(names) == 1 and names[0].isdigit():
        prefix = own.get("--range-prefix") or "kernel"
        names = [f"{prefix}{i}" for i in range(1, int(names[0]) + 1)]
    found = [Node(host_format(n if "@" in n else f"{n}@{host}"), list(shared)) for n in names]
    for scope, tokens in scoped:
        for index in _select(scope, names, found):
            found[index].argv += tokens
    return found


def _options(tokens: list[str]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The options for every node, and (scope, options) for some."""
    shared: list[str] = []
    scoped: list[tuple[str, list[str]]] = []
    i = 0
    while i < len(tokens):
        match = _SCOPED.match(tokens[i])
        if match is None:
            shared.append(tokens[i])
            i += 1
            continue
        option, scope, value = match.groups()
        if value is None and i + 1 < len(tokens) and not tokens[i + 1].startswith("-"):
            value, i = tokens[i + 1], i + 1
        scoped.append((scope, [option] if value is None else [option, value]))
        i += 1
    return shared, scoped


def _own(tokens: list[str]) -> Iterator[tuple[str, str]]:
    for i, token in enumerate(tokens):
        key, eq, value = token.partition("=")
        if key in OWN:
            if not eq and (i + 1 >= len(tokens) or tokens[i + 1].startswith("-")):
                raise click.UsageError(f"{key} needs a value")
            yield key, value if eq else tokens[i + 1]


def _drop_own(tokens: list[str]) -> Iterator[str]:
    skip = False
    for token in tokens:
        if skip:
            skip = False
            continue
        key, eq, _ = token.partition("=")
        if key in OWN:
            skip = not eq
            continue
        yield token


def _select(scope: str, names: list[str], found: list[Node]) -> list[int]:
    """``1``, ``1-3``, ``1,3``, ``w1``, ``w1,w2`` or a full node name: the nodes' indexes."""
    chosen: list[int] = []
    for part in scope.split(","):
        low, dash, high = part.partition("-")
        if low.isdigit() and (not dash or high.isdigit()):
            first, last = int(low), int(high) if dash else int(low)
            if not 1 <= first <= last <= len(found):
                raise click.UsageError(f"option scope {scope!r}: there are nodes 1 to "
                                       f"{len(found)}")
            chosen += range(first - 1, last)
            continue
        matches = [i for i, (n, node) in enumerate(zip(names, found, strict=True))
                   if part in (n, node.name, node.name.partition("@")[0])]
        if not matches:
            raise click.UsageError(f"option scope {scope!r}: no node is named {part!r} "
                                   f"(nodes: {', '.join(node.name for node in found)})")
        chosen += matches
    return chosen


# ------------------------------------------------------------------ actions


def start(node: Node) -> bool:
    done = subprocess.run(node.command(), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        reason = reason.removeprefix("error: ")
        click.echo(f"\t> {node.name}: FAILED: {reason}")
        return False
    deadline = time.monotonic() + START_TIMEOUT
    while (pid := node.pid) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid is None:
        click.echo(f"\t> {node.name}: FAILED: no running worker wrote {node.pidfile} within "
                   f"{START_TIMEOUT:g} s; see its log file")
        return False
    click.echo(f"\t> {node.name}: OK (pid {pid})")
    return True


def send(node: Node, sig: signal.Signals) -> int | None:
    """Signal the node's worker: its pid, or None if it is down."""
    pid = node.pid
    if pid is None:
        click.echo(f"\t> {node.name}: DOWN")
        return None
    os.kill(pid, sig)
    click.echo(f"\t> {node.name}: {sig.name.removeprefix('SIG')} -> {pid}")
    return pid


def wait_gone(waiting: dict[str, int]) -> None:
    """Until every worker in `waiting` (node name: pid) exited."""
    from kernel.worker.pidfile import alive

    while waiting:
        click.echo(f"> Waiting for {len(waiting)} node{'s' if len(waiting) > 1 else ''} -> "
                   f"{', '.join(map(str, waiting.values()))}...")
        while all(alive(pid) for pid in waiting.values()):
            time.sleep(0.2)
        for name, pid in list(waiting.items()):
            if not alive(pid):
                click.echo(f"\t> {name}: OK")
                del waiting[name]


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                 "help_option_names": ["--help"]})
@click.argument("action", type=click.Choice(ACTIONS), metavar="|".join(ACTIONS))
@click.argument("argv", nargs=-1, type=click.UNPROCESSED, metavar="NAMES [WORKER OPTIONS]")
def multi(action: str, argv: tuple[str, ...]) -> None:
    """Start, stop and restart several detached workers (nodes) on this machine, as Celery's
    celery multi. NAMES: a number (3: kernel1..kernel3, --range-prefix for another prefix) or
    names (w1 w2); --hostname replaces this machine's name. Worker options follow, for every
    node, and per node: -c:1 4 (node 1), -Q:1-2 a, --loglevel:w2=DEBUG. Pid files default to
    %n.pid, log files to %n%I.log. stop sends SIGTERM, stopwait waits for the workers to exit,
    kill sends SIGKILL, show prints the command lines.

    \b
    kernel multi start 3 -A proj.tasks:app -c 4 -c:1 8
    kernel multi stopwait 3"""
    found = nodes(argv)
    ok = True
    if action == "show":
        for node in found:
            click.echo(shlex.join(node.command()))
    elif action == "start":
        click.echo("> Starting nodes...")
        ok = all([start(node) for node in found])
    elif action in ("stop", "stopwait", "kill"):
        sig = signal.SIGKILL if action == "kill" else signal.SIGTERM
        click.echo("> Killing nodes..." if action == "kill" else "> Stopping nodes...")
        sent = {node.name: pid for node in found if (pid := send(node, sig)) is not None}
        if action == "stopwait":
            wait_gone(sent)
    else:  # restart
        click.echo("> Restarting nodes...")
        for node in found:
            pid = send(node, signal.SIGTERM)
            if pid is not None:
                wait_gone({node.name: pid})
            ok = start(node) and ok
    click.get_current_context().exit(0 if ok else 1)
