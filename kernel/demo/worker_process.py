"""The demo's worker: ``python -m kernel worker`` in a child process, stopped like a service
manager stops one (SIGTERM, a deadline, then SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import kernel

#: where `kernel` is imported from, so the child runs the same code even if it is not installed.
KERNEL_ROOT = str(Path(kernel.__file__).resolve().parent.parent)


class WorkerProcess:
    def __init__(self, args: Sequence[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.command = [sys.executable, "-m", "kernel", *args]
        path = os.environ.get("PYTHONPATH")
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1",
                    "PYTHONPATH": os.pathsep.join(p for p in (KERNEL_ROOT, path) if p)}
        self.cwd = cwd
        self.log_path = log
        self._log: IO[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None, "start() first"
        return self._proc.pid

    def start(self) -> None:
        self._log = self.log_path.open("wb")
        # Its own session, so a SIGKILL fallback can reach the pool's children too.
        self._proc = subprocess.Popen(self.command, cwd=self.cwd, env=self.env,
                                      stdin=subprocess.DEVNULL, stdout=self._log,
                                      stderr=subprocess.STDOUT, start_new_session=True)

    def exit_code(self) -> int | None:
        """None while it runs."""
        return None if self._proc is None else self._proc.poll()

    def stop(self, deadline: float) -> str | None:
        """SIGTERM (a warm shutdown), wait up to `deadline` s, then SIGKILL. Returns what went
        wrong, or None for a clean exit with status 0."""
        proc = self._proc
        if proc is None:
            return None
        problem = None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(deadline)
            except subprocess.TimeoutExpired:
                self._kill_group(proc)
                problem = f"the worker did not stop within {deadline:.0f} s of SIGTERM; killed it"
        if problem is None and proc.returncode != 0:
            problem = f"the worker exited with status {proc.returncode}"
        return problem

    def close(self) -> None:
        """Kill the worker if it still runs (never left behind), close its log."""
        if self._proc is not None and self._proc.poll() is None:
            self._kill_group(self._proc)
        if self._log is not None:
            self._log.close()

    @staticmethod
    def _kill_group(proc: subprocess.Popen[bytes]) -> None:
        try:
            if hasattr(os, "killpg"):
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except ProcessLookupError:
            pass
        proc.wait()

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])
