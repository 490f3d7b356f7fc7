"""Stopping the worker processes a test started: politely first, by force after a grace."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Sequence


def stop_processes(processes: Sequence[subprocess.Popen[bytes]], grace: float = 15.0) -> None:
    """SIGTERM every process still running (a warm shutdown), wait up to `grace` seconds for
    each, and SIGKILL those still there."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
