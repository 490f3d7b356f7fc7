"""Worker subprocesses: start one, sample its memory while it runs, kill it when done."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
#: how often the worker's resident memory is sampled (psutil), in seconds.
RSS_EVERY = 0.05


class WorkerProc:
    """``python -m <argv...>`` in its own session; its output goes to a temporary log that is
    shown if it dies or will not stop. `rss` is the latest sum of RSS over the worker process
    and all its children, `peak_rss` the largest seen while it ran, in bytes."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.argv = [sys.executable, "-m", *argv]
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            self.argv, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env}, start_new_session=True)
        self.rss = 0
        self.peak_rss = 0
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.proc.pid)
        except psutil.NoSuchProcess:
            return
        while not self._done.wait(RSS_EVERY):
            total = 0
            try:
                for proc in [root, *root.children(recursive=True)]:
                    try:
                        total += proc.memory_info().rss
                    except psutil.NoSuchProcess:
                        continue
            except psutil.NoSuchProcess:
                return
            self.rss = total
            self.peak_rss = max(self.peak_rss, total)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker {' '.join(self.argv[2:])} exited with "
                               f"{self.proc.returncode}:\n{self.output()}")

    def stop(self) -> None:
        """Kill the worker's whole session. The measurement is over, and a warm shutdown (1-3 s
        per worker here, 60+ workers per run) would measure nothing; what the worker held on
        the broker is emptied by the broker's reset, which runs next."""
        self._done.set()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self._sampler.join()
        self.log.close()
