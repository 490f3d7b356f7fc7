"""Reading the file the scenario's task writes (`tests.faults.tasks.book`): which tasks ran, how
often, in which process, and when each run started and ended."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class Run:
    """One run of a task: the process it ran in, when it started and when it ended (None: it
    never did, its process died first), on the machine's monotonic clock."""

    pid: int
    started: float
    ended: float | None = None


class Book:
    """The runs booked in `path`, read incrementally (each call reads only what was appended
    since the last one)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._runs: dict[str, list[Run]] = {}

    def runs(self) -> dict[str, list[Run]]:
        """Every task that started at least once, with its runs in the order they started."""
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return self._runs
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        self._offset += end
        for line in data[:end].decode().splitlines():
            kind, task_id, pid, when = line.split()
            runs = self._runs.setdefault(task_id, [])
            if kind == "S":
                runs.append(Run(int(pid), float(when)))
            else:  # the end of the earliest unfinished run in that process
                run = next(r for r in runs if r.pid == int(pid) and r.ended is None)
                run.ended = float(when)
        return self._runs

    def completed(self) -> dict[str, float]:
        """Tasks that ran to their end at least once: when the first such run ended."""
        return {task_id: min(r.ended for r in runs if r.ended is not None)
                for task_id, runs in self.runs().items()
                if any(r.ended is not None for r in runs)}

    def running(self) -> list[Run]:
        """Runs started and not (yet) ended."""
        return [run for runs in self.runs().values() for run in runs if run.ended is None]
