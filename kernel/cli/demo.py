"""``kernel demo``: see kernel in action with nothing installed but kernel."""

from __future__ import annotations

import click


@click.command()
@click.option("--tasks", "count", type=click.IntRange(min=1), default=3000, show_default=True,
              help="How many tasks to send.")
@click.option("-c", "--concurrency", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("-P", "--pool", default="prefork", show_default=True, metavar="NAME")
@click.option("--timeout", type=click.FloatRange(min=1), default=60.0, show_default=True,
              metavar="S", help="Give up on tasks not finished this long after sending.")
def demo(count: int, concurrency: int, pool: str, timeout: float) -> None:
    """Start a worker on a throw-away SQLite file, send it a mix of tasks (sync, async, and some
    that fail on purpose), and print throughput and latency. Exits with status 1 if a task went
    missing, finished wrongly, or the worker did not stop cleanly."""
    from kernel.demo.runner import run_demo

    click.get_current_context().exit(run_demo(count, concurrency, pool, timeout))
