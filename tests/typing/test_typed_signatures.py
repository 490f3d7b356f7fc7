"""`task.delay` is typed with ParamSpec: a type checker rejects wrong arguments."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = Path(__file__).with_name("sample_calls.py")


def test_mypy_rejects_wrong_task_arguments_and_accepts_right_ones() -> None:
    pytest.importorskip("mypy")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--strict",
         "--follow-imports=silent", "--show-error-codes", str(SAMPLE)],
        capture_output=True, text=True, cwd=SAMPLE.parents[2])
    errors = {int(m.group(1)) for m in re.finditer(r"sample_calls\.py:(\d+): error", proc.stdout)}
    lines = SAMPLE.read_text().splitlines()
    expected = {n for n, line in enumerate(lines, 1) if "# E:" in line}
    assert errors == expected, f"mypy output:\n{proc.stdout}"


def test_kernel_ships_py_typed() -> None:
    import kernel

    assert (Path(kernel.__file__).parent / "py.typed").exists()
