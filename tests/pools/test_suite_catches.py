"""The pool suite fails pools that break the contract (so a passing run means something)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BROKEN_POOLS = """
import pytest

from kernel.interfaces.pool import PoolCapabilities
from kernel.std.pools.threads import ThreadPool
from kernel.testing.pool import PoolSuite


class DoubleReport(ThreadPool):
    def submit(self, job, on_done):
        super().submit(job, lambda outcome: (on_done(outcome), on_done(outcome)))


class ClaimsIsolation(ThreadPool):
    capabilities = PoolCapabilities(soft_time_limit=True, resize=True, isolated=True)


class ResizesWithoutSaying(ThreadPool):
    capabilities = PoolCapabilities(soft_time_limit=True)


class TestDoubleReport(PoolSuite):
    @pytest.fixture
    def make_pool(self):
        return DoubleReport


class TestClaimsIsolation(PoolSuite):
    @pytest.fixture
    def make_pool(self):
        return ClaimsIsolation


class TestResizesWithoutSaying(PoolSuite):
    @pytest.fixture
    def make_pool(self):
        return ResizesWithoutSaying
"""


@pytest.mark.timeout(120)
def test_the_suite_catches_broken_pools(tmp_path: Path) -> None:
    (tmp_path / "test_broken.py").write_text(BROKEN_POOLS)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rf",
            "-p",
            "no:xdist",
            "-p",
            "no:cacheprovider",
            "-k",
            "exactly_one or isolation or grow",
            "test_broken.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=110,
    )
    failed = set(re.findall(r"^FAILED test_broken.py::(\w+::\w+)", run.stdout, re.M))
    assert failed == {
        "TestDoubleReport::test_every_job_gets_exactly_one_outcome_with_the_runner_value",
        "TestDoubleReport::test_grow_and_shrink",
        "TestClaimsIsolation::test_isolation_is_declared_truthfully",
        "TestResizesWithoutSaying::test_grow_and_shrink",
    }, run.stdout[-3000:]
    assert "reported twice" in run.stdout and "hint:" in run.stdout
