"""Medians, ratios against Celery, the best peer and the bare client, the targets; a rich
table and JSON."""

from __future__ import annotations

import os
import platform
import statistics
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from rich.console import Console
from rich.table import Table

from tests.bench.scenarios import Samples
from tests.bench.brokers import BROKERS
from tests.bench.systems import PEERS

KERNEL = "kernel"


@dataclass(frozen=True)
class Row:
    id: str
    label: str
    unit: str
    higher_is_better: bool = True
    #: targets: (against, bound on kernel/that, on that broker only or None). Against:
    #: "celery", "best" (peer), "bare" (client), another row of kernel's own ("drain.one"),
    #: or "value" (kernel's figure itself).
    targets: tuple[tuple[str, float, str | None], ...] = ()


ROWS = (
    Row("enqueue.call", "enqueue, per call", "tasks/s",
        targets=(("celery", 5, None), ("bare", 0.5, "redis"), ("best", 1, "redis"),
                 ("bare", 0.9, "rabbitmq"))),
    Row("enqueue.pipelined", "enqueue, per call in app.pipelined() (peers: per call)",
        "tasks/s", targets=(("celery", 5, None),)),
    Row("enqueue.batch", "enqueue, batch API (peers: per call)", "tasks/s",
        targets=(("celery", 30, None),)),
    Row("enqueue.unconfirmed", "enqueue, per call, confirm_publish=False (peers: per call)",
        "tasks/s"),
    Row("drain.one", "drain, 1 process", "tasks/s",
        targets=(("celery", 5, None), ("best", 2, None), ("bare", 0.6, "redis"),
                 ("bare", 0.5, "rabbitmq"))),
    Row("drain.events", "drain, 1 process, task events on (-E)", "tasks/s",
        targets=(("drain.one", 0.9, None),)),
    Row("drain.two", "drain, 2 processes", "tasks/s",
        targets=(("celery", 5, None), ("best", 1, None), ("drain.one", 1.2, None))),
    Row("rtt.p50", "round trip p50", "ms", False,
        targets=(("celery", 1 / 3, None), ("value", 1.0, "redis"))),
    Row("rtt.p99", "round trip p99", "ms", False),
    Row("rtt.untracked.p50", "round trip p50, task_track_sent=False (no PENDING record)", "ms",
        False, targets=(("value", 1.0, "redis"),)),
    Row("rtt.untracked.p99", "round trip p99, task_track_sent=False", "ms", False),
    Row("io", "I/O-bound (50 ms sleeps)", "tasks/s", targets=(("celery", 1, None),)),
    Row("green.gevent", "I/O-bound on sockets, 500 green slots (quick: 50): -P gevent",
        "tasks/s", targets=(("celery", 1.5, None),)),
    Row("green.gevent.seconds", "  that drain's time (ideal: 0.2 s)", "s", False,
        targets=(("value", 0.4, None),)),
    Row("rss.green.gevent", "  peak RSS of that worker", "MiB", False),
    Row("slot.green.gevent", "  that over its slots (at most per slot)", "KiB", False),
    Row("green.eventlet", "I/O-bound on sockets, 500 green slots (quick: 50): -P eventlet",
        "tasks/s", targets=(("celery", 1.5, None),)),
    Row("green.eventlet.seconds", "  that drain's time (ideal: 0.2 s)", "s", False,
        targets=(("value", 0.4, None),)),
    Row("rss.green.eventlet", "  peak RSS of that worker", "MiB", False),
    Row("slot.green.eventlet", "  that over its slots (at most per slot)", "KiB", False),
    Row("rss.one", "peak RSS, 1 process", "MiB", False, targets=(("celery", 1, None),)),
    Row("rss.two", "peak RSS, 2 processes", "MiB", False, targets=(("celery", 1, None),)),
    Row("queues", "drain, 1 process, tasks spread over 100 queues", "tasks/s",
        targets=(("drain.one", 0.8, None),)),
    Row("backlog.enqueue", "backlog: enqueue, batch API", "tasks/s"),
    Row("backlog.drain", "backlog: drain, 2 processes", "tasks/s"),
    Row("backlog.first", "backlog: drain rate, first 10% of tasks", "tasks/s"),
    Row("backlog.last", "backlog: drain rate, last 10%", "tasks/s",
        targets=(("backlog.first", 0.9, None),)),
    Row("backlog.rss_first", "backlog: worker RSS, first 10%", "MiB", False),
    Row("backlog.rss_last", "backlog: worker RSS, last 10%", "MiB", False,
        targets=(("backlog.rss_first", 1.1, None),)),
    Row("limit.fetch", "bare client: fetch one at a time", "msgs/s"),
    Row("limit.fetch_pipelined", "bare client: fetch 100 at a time", "msgs/s"),
)


def medians(samples: Samples) -> dict[str, dict[str, float]]:
    return {row: {system: statistics.median(values) for system, values in by_system.items()}
            for row, by_system in samples.items()}


def build(samples: Samples, broker: str, bare: str) -> list[dict[str, Any]]:
    """One dict per row that has data: medians, runs, ratios, targets and whether each is met
    (those of `broker`; `bare` names the bare client's column)."""
    med = medians(samples)
    out = []
    for row in ROWS:
        values = med.get(row.id)
        if not values:
            continue
        peers = {name: v for name, v in values.items() if name in PEERS}
        if row.id in ("enqueue.batch", "enqueue.pipelined", "enqueue.unconfirmed"):
            # peers have none: compare with their per call (none of them waits for confirms)
            peers = {name: v for name, v in med.get("enqueue.call", {}).items() if name in PEERS}
        pick = max if row.higher_is_better else min
        best = pick(peers, key=lambda name: peers[name]) if peers else None
        kernel = values.get(KERNEL)
        ratio_celery = kernel / peers["celery"] if kernel and "celery" in peers else None
        ratio_best = kernel / peers[best] if kernel and best else None
        ratio_bare = kernel / values[bare] if kernel and values.get(bare) else None
        targets = []
        for against, bound, only_on in row.targets:
            if only_on not in (None, broker):
                continue
            ratio = {"celery": ratio_celery, "best": ratio_best, "bare": ratio_bare,
                     "value": kernel}.get(against)
            if against in med and kernel and med[against].get(KERNEL):
                ratio = kernel / med[against][KERNEL]
            if ratio is None:
                continue
            met = ratio >= bound if row.higher_is_better else ratio <= bound
            targets.append({"against": against, "bound": bound, "ratio": ratio, "met": met})
        out.append({
            "id": row.id, "label": row.label, "unit": row.unit,
            "higher_is_better": row.higher_is_better, "median": values,
            "runs": {name: list(v) for name, v in samples[row.id].items()},
            "peers_compared": peers, "best_peer": best,
            "ratio_celery": ratio_celery, "ratio_best_peer": ratio_best,
            "ratio_bare": ratio_bare, "targets": targets,
        })
    return out


def environment(servers: dict[str, str | None]) -> dict[str, Any]:
    versions = {}
    for dist in ("kernel", "kernel-redis", "kernel-amqp", "kernel-sqs", "celery", "kombu",
                 "amqp", "dramatiq", "pika", "huey", "redis", "hiredis", "gevent", "eventlet",
                 "greenlet", "kernel-gevent", "kernel-eventlet"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "versions": versions,
            "servers": {name: version for name, version in servers.items() if version}}


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def render(table: dict[str, Any], console: Console) -> None:
    """One broker's rows: kernel and the peers, the ratios and targets, then the columns with
    no peer to compare (the bare client, the embedded default)."""
    rows = table["rows"]
    present = {name for row in rows for name in row["median"]}
    systems = [name for name in (KERNEL, *PEERS) if name in present]
    extra = sorted(present - set(systems))
    counts = table["counts"]
    out = Table(title=f"on {BROKERS[table['broker']].title}: kernel vs peers, median of "
                      f"{counts['runs']} run(s); {counts['enqueue']:,} tasks per enqueue row, "
                      f"{counts['drain']:,} per drain"
                      + (f"; a backlog of {table['scale']['backlog']:,}"
                         if any(row["id"].startswith("backlog.") for row in rows) else ""))
    out.add_column("row")
    out.add_column("unit")
    for name in systems:
        out.add_column(name, justify="right")
    out.add_column("kernel/celery", justify="right")
    out.add_column("kernel/best peer", justify="right")
    out.add_column(f"kernel/{table['bare']}", justify="right")
    out.add_column("target", justify="left")
    for name in extra:
        out.add_column(name, justify="right")
    for row in rows:
        med = row["median"]
        cells = [_fmt(med.get(name)) for name in systems]
        best = f" ({row['best_peer']})" if row["best_peer"] else ""
        target = _targets(row)
        out.add_row(row["label"], row["unit"], *cells, _ratio(row["ratio_celery"]),
                    _ratio(row["ratio_best_peer"]) + best, _ratio(row["ratio_bare"]), target,
                    *[_fmt(med.get(name)) for name in extra])
    console.print(out)
    for name, modes in table["configs"].items():
        console.print(f"  {name}: " + "; ".join(f"{mode}: {desc}" for mode, desc in modes.items()))


def markdown(table: dict[str, Any]) -> str:
    """One broker's rows as a Markdown table, as docs/benchmarks.md shows them."""
    rows = table["rows"]
    present = {name for row in rows for name in row["median"]}
    systems = [name for name in (KERNEL, *PEERS) if name in present]
    extra = sorted(present - set(systems))
    head = ["row", *systems, "kernel/celery", "kernel/best peer", f"kernel/{table['bare']}",
            "target", *extra]
    lines = ["| " + " | ".join(head) + " |",
             "|---|" + "---:|" * (len(systems) + 3) + "---|" + "---:|" * len(extra)]
    for row in rows:
        med = row["median"]
        best = f" ({row['best_peer']})" if row["best_peer"] else ""
        cells = [f"{row['label']} ({row['unit']})",
                 *[_fmt(med.get(name)) for name in systems],
                 _ratio(row["ratio_celery"]), _ratio(row["ratio_best_peer"]) + best,
                 _ratio(row["ratio_bare"]), _targets(row),
                 *[_fmt(med.get(name)) for name in extra]]
        lines.append("| " + " | ".join("–" if c == "-" else c for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _targets(row: dict[str, Any]) -> str:
    return ", ".join(
        f"{'✓' if t['met'] else '✗'} {'≥' if row['higher_is_better'] else '≤'}"
        + (f"{t['bound']:.2g} {row['unit']}" if t["against"] == "value" else
           f"{t['bound']:.2g}x {t['against']}") for t in row["targets"])


def render_environment(env: dict[str, Any], console: Console) -> None:
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    servers = ", ".join(f"{BROKERS[k].title} {v}" for k, v in env["servers"].items())
    console.print(f"  Python {env['python']}, {env['cpu_count']} CPUs; {servers or 'no server'}; "
                  f"{versions}")
