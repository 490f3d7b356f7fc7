"""``kernel dlq list / replay / purge``: the dead-letter queue ``<queue>.dead`` of each queue,
where rejected and poison messages wait with the reason they were taken out."""

from __future__ import annotations

import click
from rich.markup import escape
from rich.table import Table

from kernel import console
from kernel.cli.root import CliState, app_option
from kernel.cli.worker import split_queues
from kernel.errors import MissingCapability
from kernel.interfaces.transport import DEAD_LETTER_SUFFIX
from kernel.interfaces.transport import Outgoing, Transport


def _transport(state: CliState) -> tuple[Transport, list[str]]:
    app = state.app()
    transport = app.transport
    if not transport.capabilities.dead_letter:
        raise MissingCapability("this broker has no dead-letter queue: rejected messages are "
                                "dropped there (see `kernel plugins list`)")
    return transport, [app.conf.task_default_queue]


@click.group("dlq")
def dlq() -> None:
    """Inspect, replay or purge dead-lettered messages."""


@dlq.command("list")
@app_option
@click.option("-Q", "--queues", metavar="Q1,Q2", help="Queues whose dead letters to show.")
@click.option("-n", "--limit", default=50, show_default=True, help="At most this many per queue.")
@click.pass_obj
def list_(state: CliState, queues: str | None, limit: int) -> None:
    """Show dead letters, oldest first: task id, name, deliveries and the reason."""
    transport, default = _transport(state)
    table = Table("queue", "task id", "task", "deliveries", "reason")
    for queue in split_queues(queues) or default:
        for d in transport.dead_letters(queue, limit):
            headers = d.envelope.headers
            table.add_row(escape(queue), escape(str(headers.get("id", "?"))),
                          escape(str(headers.get("task", "?"))), str(d.delivery_count),
                          escape(str(d.extra.get("reason", ""))))
    console.stdout().print(table if table.row_count else "no dead letters")


@dlq.command("replay")
@app_option
@click.option("-Q", "--queues", metavar="Q1,Q2", help="Queues whose dead letters to replay.")
@click.option("-n", "--limit", default=1000, show_default=True, help="At most this many.")
@click.pass_obj
def replay(state: CliState, queues: str | None, limit: int) -> None:
    """Send dead letters back to their queue (fixed the bug? run them again), oldest first."""
    transport, default = _transport(state)
    out = console.stdout()
    for queue in split_queues(queues) or default:
        moved = 0
        while moved < limit:
            batch = transport.fetch([queue + DEAD_LETTER_SUFFIX], min(100, limit - moved), 0.0)
            if not batch:
                break
            # Published before acked: a crash in between duplicates, never loses.
            transport.publish([Outgoing(queue, d.envelope,
                                        int(d.envelope.properties.get("priority") or 0))
                               for d in batch])
            transport.ack(batch)
            moved += len(batch)
        out.print(f"{escape(queue)}: {moved} message{'' if moved == 1 else 's'} replayed")


@dlq.command("purge")
@app_option
@click.option("-Q", "--queues", metavar="Q1,Q2", help="Queues whose dead letters to delete.")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def purge(state: CliState, queues: str | None, force: bool) -> None:
    """Delete dead letters for good."""
    transport, default = _transport(state)
    names = split_queues(queues) or default
    if not force:
        click.confirm(f"Delete every dead letter of {', '.join(names)}?", abort=True)
    for queue in names:
        deleted = transport.purge(queue + DEAD_LETTER_SUFFIX)
        console.stdout().print(f"{escape(queue)}: {deleted} dead letter"
                              f"{'' if deleted == 1 else 's'} deleted")
