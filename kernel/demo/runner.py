"""The demo run: start a worker on a throw-away SQLite file, send the workloads, watch the results
arrive, print a summary, stop the worker cleanly. Exit status 0 only if every task is accounted
for with the outcome it should have and the worker stopped cleanly."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kernel import App
from kernel import console
from kernel.demo import tasks
from kernel.demo.worker_process import WorkerProcess
from kernel.demo.workloads import DEFAULT_WORKLOADS, Tracked, Workload, share_out
from kernel.errors import TimeoutError
from kernel.message import from_iso

APP_SPEC = "kernel.demo.tasks:app"
#: messages per `send_many` batch per workload.
BATCH = 500
#: how often the result store is read while the progress bar runs.
POLL_SECONDS = 0.1
#: results read per poll beyond the oldest pending one; a full pass runs once at the end.
POLL_BUDGET = 200
STARTUP_DEADLINE = 30.0
SHUTDOWN_DEADLINE = 20.0


@dataclass
class Outcome:
    tracked: Tracked
    done_at: float | None
    problem: str | None


@dataclass
class ResultWatcher:
    """Reads the records of pending tasks, oldest first: they finish roughly in order, so a
    bounded number of reads per poll finds nearly all new results."""

    app: App
    pending: list[Tracked]
    outcomes: list[Outcome] = field(default_factory=list)

    def poll(self, budget: int | None = POLL_BUDGET) -> None:
        still: list[Tracked] = []
        misses = 0
        for index, item in enumerate(self.pending):
            if budget is not None and misses >= budget:
                still.extend(self.pending[index:])
                break
            record = self.app.backend.get_meta(item.task_id)
            if record is None or record.get("date_done") is None:
                misses += 1
                still.append(item)
                continue
            self.outcomes.append(Outcome(item, from_iso(record["date_done"]), item.judge(record)))
        self.pending = still


@dataclass
class Summary:
    workloads: Sequence[Workload]
    outcomes: list[Outcome]
    missing: list[Tracked]

    def rows(self) -> list[tuple[str, list[int]]]:
        """(label, [sent, succeeded, failed as expected, unexpected, missing]) per workload."""
        rows = []
        for w in self.workloads:
            mine = [o for o in self.outcomes if o.tracked.workload == w.label]
            good = [o for o in mine if o.problem is None]
            failed = sum(1 for o in good if o.tracked.expect_failure)
            missing = sum(1 for t in self.missing if t.workload == w.label)
            rows.append((w.label, [len(mine) + missing, len(good) - failed, failed,
                                   len(mine) - len(good), missing]))
        return rows

    @property
    def problems(self) -> list[str]:
        return [o.problem for o in self.outcomes if o.problem is not None]

    def latencies(self) -> list[float]:
        return sorted(o.done_at - o.tracked.submitted for o in self.outcomes
                      if o.done_at is not None)

    def throughput(self) -> float:
        done = [o.done_at for o in self.outcomes if o.done_at is not None]
        if not done:
            return 0.0
        span = max(done) - min(o.tracked.submitted for o in self.outcomes)
        return len(done) / span if span > 0 else float(len(done))


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not ordered:
        return 0.0
    rank = max(1, round(p / 100 * len(ordered) + 0.4999))
    return ordered[min(rank, len(ordered)) - 1]


def submit(app: App, count: int, workloads: Sequence[Workload]) -> list[Tracked]:
    tracked: list[Tracked] = []
    for start in range(0, count, BATCH * len(workloads)):
        numbers = range(start, min(count, start + BATCH * len(workloads)))
        for workload, share in zip(workloads, share_out(numbers, workloads), strict=True):
            tracked.extend(workload.submit(app, share))
    return tracked


def wait_until_ready(app: App, worker: WorkerProcess) -> str | None:
    """Run one task through the worker, so latencies measure work rather than start-up."""
    probe = app.send_task(tasks.add.name, [0, 0])
    deadline = time.monotonic() + STARTUP_DEADLINE
    while time.monotonic() < deadline:
        code = worker.exit_code()
        if code is not None:
            return f"the worker exited with status {code} while starting"
        try:
            probe.get(timeout=0.25)
            return None
        except TimeoutError:
            continue
    return f"the worker ran no task within {STARTUP_DEADLINE:.0f} s of starting"


def watch(console: Console, watcher: ResultWatcher, worker: WorkerProcess,
          timeout: float) -> str | None:
    """A live progress bar until every result is in; what stopped it early, if anything."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn())
    total = len(watcher.pending)
    started = time.monotonic()
    with Progress(*columns, console=console) as bar:
        job = bar.add_task("done", total=total, rate="")
        while watcher.pending:
            watcher.poll()
            elapsed = time.monotonic() - started
            finished = total - len(watcher.pending)
            bar.update(job, completed=finished, rate=f"{finished / max(elapsed, 1e-3):.0f}/s")
            if not watcher.pending:
                break
            code = worker.exit_code()
            if code is not None:
                return f"the worker exited with status {code} with {len(watcher.pending)} tasks " \
                       f"unfinished"
            if elapsed > timeout:
                return f"{len(watcher.pending)} tasks did not finish within {timeout:.0f} s"
            time.sleep(POLL_SECONDS)  # a poll interval: SQLite has no push for results
    return None


def render(console: Console, summary: Summary) -> None:
    table = Table("workload", title="kernel demo", title_justify="left")
    for column in ("sent", "succeeded", "expected failures", "unexpected", "missing"):
        table.add_column(column, justify="right")
    rows = summary.rows()
    for label, counts in rows:
        table.add_row(escape(label), *(str(c) for c in counts))
    totals = [sum(column) for column in zip(*(counts for _, counts in rows), strict=True)]
    table.add_row("[bold]total[/]", *(f"[bold]{t}[/]" for t in totals))
    console.print(table)
    lat = summary.latencies()
    metrics = Table.grid(padding=(0, 2))
    metrics.add_column(style="bold cyan")
    metrics.add_column(justify="right")
    metrics.add_row("throughput", f"{summary.throughput():,.0f} tasks/s")
    for p in (50, 95, 99):
        metrics.add_row(f"latency p{p}", f"{percentile(lat, p) * 1000:,.1f} ms")
    console.print(metrics)
    console.print("[dim]latency: from publishing a task to its result being stored[/]")


def run_demo(count: int, concurrency: int, pool: str, timeout: float,
             workloads: Sequence[Workload] = DEFAULT_WORKLOADS) -> int:
    out = console.stdout()
    out.print(f"[bold]kernel demo[/]: {count} tasks "
              f"({', '.join(w.label for w in workloads)}) on a {escape(pool)} pool of "
              f"{concurrency}, with a throw-away SQLite broker and result store")
    with tempfile.TemporaryDirectory(prefix="kernel-demo-") as tmp:
        where = Path(tmp)
        url = f"sqlite:///{where / 'kernel.db'}"
        worker = WorkerProcess(
            ["-A", APP_SPEC, "worker", "-P", pool, "-c", str(concurrency)],
            {"KERNEL_BROKER_URL": url, "KERNEL_RESULT_BACKEND": url}, where, where / "worker.log")
        client = App("kernel-demo-client", broker=url, results=url)
        problem: str | None = None
        watcher = ResultWatcher(client, [])
        try:
            worker.start()
            out.print(f"started a worker (pid {worker.pid}); waiting for it to run a task")
            began = time.monotonic()
            problem = wait_until_ready(client, worker)
            if problem is None:
                out.print(f"worker ready in {time.monotonic() - began:.1f} s; sending")
                began = time.monotonic()
                watcher.pending = submit(client, count, workloads)
                spent = time.monotonic() - began
                out.print(f"sent {count} tasks in {spent:.2f} s with send_many "
                              f"({count / max(spent, 1e-3):,.0f}/s)")
                problem = watch(out, watcher, worker, timeout)
                watcher.poll(budget=None)
        finally:
            # A worker that already died has been reported; only a live one is stopped here.
            dead = worker.exit_code() is not None and problem is not None
            out.print("stopping the worker (SIGTERM)")
            stop_problem = None if dead else worker.stop(SHUTDOWN_DEADLINE)
            worker.close()
            client.close()
        return report(out, Summary(workloads, watcher.outcomes, watcher.pending),
                      [p for p in (problem, stop_problem) if p], worker)


def report(out: Console, summary: Summary, problems: list[str],
           worker: WorkerProcess) -> int:
    if summary.outcomes or summary.missing:
        render(out, summary)
    wrong = summary.problems
    for line in wrong[:5]:
        console.error(f"unexpected outcome: {line}")
    if len(wrong) > 5:
        console.error(f"... and {len(wrong) - 5} more unexpected outcomes")
    for line in problems:
        console.error(line)
    if problems:
        console.stderr().print(f"[dim]last lines of the worker's log:\n"
                              f"{escape(worker.log_tail())}[/]", soft_wrap=True)
    if problems or wrong:
        return 1
    out.print("[green]every task accounted for; the worker stopped cleanly[/]")
    return 0
