"""Runners for the pool tests that the suite's `SuiteRunner` does not cover (importable by
prefork children)."""

from __future__ import annotations

import os
import pickle
import re
import threading
from pathlib import Path
from typing import Any

from kernel.interfaces.pool import ChildLink, ChildMain, Job, Outcome
from kernel.interfaces.transport import Delivery
from kernel.message import Envelope
from kernel.testing.pool_runners import SuiteRunner


def sync_only(job: Job) -> Any:
    """The suite's commands without ``arun``: async jobs must then run as sync calls."""
    return SuiteRunner()(job)


def _refuse_to_load() -> None:
    raise ImportError("this runner cannot be loaded in a child (on purpose)")


class Unloadable:
    """Pickles fine in the parent; unpickling it in a child raises ImportError."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_refuse_to_load, ())

    def __call__(self, job: Job) -> Any:
        return None


def hog_or_suite(job: Job) -> Any:
    """``("hog",)``: a regular expression that backtracks for hours, holding the interpreter
    lock all along (no other thread of the process runs); else the suite's commands."""
    if job.payload[0] == "hog":
        return re.match(r"(a+)+$", "a" * 64 + "b")
    return SuiteRunner()(job)


class ScriptedChild(ChildMain):
    """A consumer child for the prefork pool's `start_consumers` tests: it runs the jobs a test
    drops into `inbox` (pickled `Job`s, one file each) with `hog_or_suite` (each job it
    took is a delivery it holds, tagged with the job's id), writes each
    outcome to ``<job id>.outcome`` there, terminates the job named in a ``terminate`` file,
    and marks ``surrendered`` when the pool is about to stop it."""

    def __init__(self, inbox: str) -> None:
        self.inbox = inbox

    def start(self, link: ChildLink) -> None:
        self._link, self._held = link, []
        self.pool = link.pool()
        self.pool.start(hog_or_suite)
        link.on_stop(lambda: Path(self.inbox, "surrendered").touch())
        self._stopped = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while not self._stopped.wait(0.01):
            for name in sorted(os.listdir(self.inbox)):
                path = os.path.join(self.inbox, name)
                if name.endswith(".job"):
                    try:  # taken by one child only, as a broker gives a message to one
                        os.rename(path, path + ".taken")
                    except FileNotFoundError:
                        continue
                    job = pickle.loads(Path(path + ".taken").read_bytes())
                    self.pool.submit(job, self._done)
                    self._held.append(Delivery(job.id, "inbox", Envelope(b"", {}), 1))
                    self._link.holding(self._held)
                elif name == "terminate":
                    job_id = Path(path).read_text()
                    os.unlink(path)
                    self.pool.terminate_job(job_id)

    def _done(self, outcome: Outcome) -> None:
        Path(self.inbox, f"{outcome.job_id}.outcome").write_text(
            f"{outcome.kind.value} {outcome.value}")

    def stop(self, warm: bool) -> None:
        self._stopped.set()
        for job in self.pool.withdraw():  # not started: back for another child
            path = os.path.join(self.inbox, f"{job.id}.job")
            os.rename(path + ".taken", path)
        self.pool.stop(wait=warm)
