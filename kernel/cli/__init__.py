"""The ``kernel`` command line: ``kernel.cli:main`` is the console script, ``python -m kernel``
runs the same. Commands live one topic per module; plugins add theirs via ``kernel_cli_commands``.
"""

from __future__ import annotations

from collections.abc import Sequence

from kernel.cli.beat import beat
from kernel.cli.demo import demo
from kernel.cli.dlq import dlq
from kernel.cli.events import events
from kernel.cli.multi import multi
from kernel.cli.plugins import plugins
from kernel.cli.remote import control, inspect
from kernel.cli.report import report
from kernel.cli.results import results
from kernel.cli.root import CliState, cli
from kernel.cli.tasks import call, purge, result
from kernel.cli.worker import worker

for _command in (worker, multi, beat, call, result, results, purge, dlq, events, inspect, control,
                 plugins, demo, report):
    cli.add_command(_command)

__all__ = ["CliState", "cli", "main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line (the ``kernel`` console script)."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="kernel")
