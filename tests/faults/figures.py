"""The figures of the fault suite: one row per scenario, appended as a JSON line to the file
``KERNEL_FAULTS_FIGURES`` names (default ``build/faults/figures.jsonl``), and the table they
make (docs/reliability.md). ``python -m tests.faults.figures [FILE]`` prints the table."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from kernel.testing.files import append_line

ROOT = Path(__file__).resolve().parents[2]

#: the scenarios in the order the table lists them (the suite's modules use these titles).
SCENARIOS = (
    "kill -9 of a worker",
    "kill -9 of a prefork child",
    "broker restart, 3 s",
    "broker restart, 30 s",
    "result store down, 10 s",
    "network cut, 20 s",
    "SIGSTOP past the lease",
)
BROKERS = ("SQLite", "Redis", "RabbitMQ")


@dataclass
class Row:
    """What one scenario measured (see docs/reliability.md for each column's meaning)."""

    scenario: str
    broker: str
    #: seconds the fault lasted: from the kill or stop until the server answered, the link
    #: was up or the worker resumed (0 for a kill, which is over at once).
    outage: float
    sent: int
    #: sends that raised ConnectionFailed and were tried again (same task id).
    raised: int
    #: seconds the slowest send took, from its first try until one returned: how long the
    #: client waited (hung, or tried again) through the fault.
    slowest_send: float
    #: seconds the longest single try of a send took, returned or raised: within
    #: broker_connection_timeout when a server cannot be reached.
    longest_try: float
    run: int
    lost: int
    twice: int
    #: seconds from the fault's end until every task sent before it, and the first one sent
    #: after it, had run to its end; None if that never happened.
    recover: float | None
    note: str = ""


def figures_file() -> Path:
    return Path(os.environ.get("KERNEL_FAULTS_FIGURES") or ROOT / "build/faults/figures.jsonl")


def record(row: Row, path: Path | None = None) -> None:
    """Append `row` in one write (the suite's parallel processes share the file)."""
    path = path or figures_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    append_line(path, json.dumps(dataclasses.asdict(row)))


def load(path: Path | None = None) -> list[Row]:
    path = path or figures_file()
    if not path.exists():
        return []
    return [Row(**json.loads(line)) for line in path.read_text().splitlines() if line]


def _order(row: Row) -> tuple[int, int]:
    def index(names: tuple[str, ...], name: str) -> int:
        return names.index(name) if name in names else len(names)

    return index(SCENARIOS, row.scenario), index(BROKERS, row.broker)


def table(rows: list[Row]) -> str:
    """The rows as a Markdown table, in the order of `SCENARIOS` and `BROKERS`."""
    lines = ["| scenario | broker | outage (s) | sent | sends raised | slowest send (s) "
             "| longest try (s) | run | lost | run twice | recover (s) |",
             "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in sorted(rows, key=_order):
        recover = "never" if r.recover is None else f"{r.recover:.1f}"
        scenario = f"{r.scenario} ({r.note})" if r.note else r.scenario
        lines.append(f"| {scenario} | {r.broker} | {r.outage:.1f} | {r.sent} | {r.raised} | "
                     f"{r.slowest_send:.1f} | {r.longest_try:.1f} | {r.run} | {r.lost} | "
                     f"{r.twice} | {recover} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(load(Path(sys.argv[1]) if len(sys.argv) > 1 else None)))
