"""The command line against a real worker process: call → worker → result, the demo end to end,
and ``python -m kernel``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

ROOT = Path(__file__).resolve().parents[2]


def run_kernel(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m kernel ARGS`` with no kernel configuration inherited from the environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KERNEL_")}
    return subprocess.run([sys.executable, "-m", "kernel", *args], cwd=cwd or ROOT,
                          env={**clean, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def worker(tasks_module: str, tmp_path: Path, env: dict[str, str]) -> Iterator[None]:
    """A threads worker for the test's app and database, stopped with SIGTERM afterwards."""
    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kernel", "worker", "-A", f"{tasks_module}:app", "-P", "threads",
         "-c", "2"], cwd=tmp_path, env={**os.environ, **env}, stdout=log,
        stderr=subprocess.STDOUT)
    try:
        yield
    finally:
        proc.terminate()
        try:
            code = proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
        assert code == 0, (tmp_path / "worker.log").read_text()


@pytest.mark.usefixtures("worker")
def test_call_wait_and_result_round_trip(invoke: Callable[..., Result],
                                         tasks_module: str) -> None:
    sent = invoke("call", f"{tasks_module}.add", "2", "40", "--wait", "--timeout", "30")
    assert sent.exit_code == 0, sent.output
    task_id, value = sent.stdout.split()
    assert value == "42"

    shown = invoke("result", task_id, "--json")
    assert shown.exit_code == 0
    assert json.loads(shown.stdout)["result"] == 42


@pytest.mark.usefixtures("worker")
def test_a_failing_task_prints_the_remote_error_and_exits_1(
        invoke: Callable[..., Result], tasks_module: str) -> None:
    sent = invoke("call", f"{tasks_module}.boom", "--wait", "--timeout", "30")
    assert sent.exit_code == 1, sent.output
    assert "ValueError: boom on purpose" in sent.stderr
    task_id = sent.stdout.strip()

    waited = invoke("result", task_id, "--wait", "--timeout", "30")
    assert waited.exit_code == 1 and "state: FAILURE" in waited.stdout


def test_python_dash_m_kernel_runs_the_command_line() -> None:
    done = run_kernel("--version")
    assert done.returncode == 0 and "kernel" in done.stdout and "version" in done.stdout


def test_a_bad_app_in_a_real_process_is_one_line_without_traceback(tmp_path: Path) -> None:
    done = run_kernel("-A", "missing_module_xyz:app", "worker", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "missing_module_xyz" in done.stderr


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path) -> None:
    """``kernel demo --tasks 300``: a prefork worker, every task accounted for, a clean stop."""
    done = run_kernel("demo", "--tasks", "300", cwd=tmp_path, env={"COLUMNS": "200"},
                      timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    total = next(line for line in done.stdout.splitlines() if "total" in line)
    # sent, succeeded, expected failures, unexpected, missing
    assert [cell.strip() for cell in total.split("│")[2:7]] == ["300", "270", "30", "0", "0"]
    assert "throughput" in done.stdout and "latency p99" in done.stdout
    assert "every task accounted for; the worker stopped cleanly" in done.stdout
    assert not list(tmp_path.iterdir()), "the demo must leave nothing in the working directory"
