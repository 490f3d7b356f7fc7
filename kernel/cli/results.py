"""``kernel results cleanup``: delete expired results from a store that keeps them until
something does (SQL tables), as Celery's ``celery.backend_cleanup`` task does."""

from __future__ import annotations

import click
from rich.markup import escape

from kernel import console
from kernel.cli.root import CliState, app_option


@click.group("results")
def results() -> None:
    """Maintain the result store."""


@results.command("cleanup")
@app_option
@click.pass_obj
def cleanup(state: CliState) -> None:
    """Delete results older than result_expires (run it daily, or let beat run
    celery.backend_cleanup); stores with a TTL of their own have nothing to delete."""
    deleted = state.app().backend.cleanup()
    out = console.stdout()
    if not deleted:
        out.print("nothing to clean up: this result store expires results itself")
        return
    counts = ", ".join(f"{n} {escape(kind)}" for kind, n in deleted.items())
    out.print(f"deleted expired records: {counts}")
