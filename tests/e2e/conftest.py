from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel import App
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """A real ``kernel worker`` subprocess; its log goes to a file the test can read."""

    def __init__(self, url: str, log: Path, *args: str, env: dict[str, str] | None = None):
        self.log_path = log
        full_env = {**os.environ, "KERNEL_BROKER_URL": url, "KERNEL_RESULT_BACKEND": url,
                    "PYTHONPATH": str(ROOT), **(env or {})}
        self.log_file = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kernel", "worker", "-A", "tests.e2e.tasks:app",
             "--loglevel", "INFO", *args],
            cwd=ROOT, env=full_env, stdout=self.log_file, stderr=subprocess.STDOUT,
            start_new_session=True)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30) -> None:
        wait_for(lambda: "ready." in self.log or self.proc.poll() is not None, timeout,
                 "worker never became ready")
        assert self.proc.poll() is None, f"worker exited early:\n{self.log}"

    def children(self) -> list[int]:
        import psutil

        return [c.pid for c in psutil.Process(self.proc.pid).children(recursive=True)]

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                raise AssertionError(f"worker did not stop on SIGTERM:\n{self.log}") from None
        self.log_file.close()
        return self.proc.returncode

    def kill_all(self) -> None:
        """kill -9 the worker and every process it started."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.log_file.close()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'kernel.db'}"


@pytest.fixture
def client(db_url: str) -> Iterator[App]:
    app = App("e2e-client", broker=db_url, results=db_url)
    yield app
    app.close()


@pytest.fixture
def start_worker(db_url: str, tmp_path: Path) -> Iterator[object]:
    started: list[WorkerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> WorkerProcess:
        worker = WorkerProcess(db_url, tmp_path / f"worker{len(started)}.log", *args, env=env)
        started.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.kill_all()
