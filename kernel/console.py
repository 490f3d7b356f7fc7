"""How the command line and the demo talk: rich consoles, one-line errors and warnings, JSON
for machines.

Consoles are made per call, not at import, so each one looks at the stream it writes to when it
writes (a terminal gets colour, a pipe or a test runner gets plain text).
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape


def stdout() -> Console:
    return Console(highlight=False)


def stderr() -> Console:
    return Console(stderr=True, highlight=False)


def error(message: str) -> None:
    """One red sentence on stderr, never wrapped, so it stays one line in logs."""
    stderr().print(f"[bold red]error:[/] [red]{escape(message)}[/]", soft_wrap=True)


def warning(message: str) -> None:
    stderr().print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


def note(message: str) -> None:
    """A progress remark for humans, on stderr so stdout stays parseable."""
    stderr().print(f"[dim]{escape(message)}[/]", soft_wrap=True)


def to_json(value: Any, *, indent: int | None = None) -> str:
    """JSON for anything a result can hold; what JSON cannot carry is shown by its repr."""
    return json.dumps(value, indent=indent, default=repr, ensure_ascii=False)
