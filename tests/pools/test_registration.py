"""The std pools as the kernel sees them: registered records, truthful capabilities, light entry."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kernel.std.pools import kernel_pools


def test_four_std_pools_are_registered_with_their_classes_capabilities() -> None:
    specs = {spec.name: spec for spec in kernel_pools()}
    assert set(specs) == {"solo", "threads", "asyncio", "prefork"}
    for spec in specs.values():
        pool = spec.factory(2, max_tasks_per_child=None, max_memory_per_child=None)
        assert type(pool).capabilities == spec.capabilities, spec.name


def test_only_prefork_is_isolated_and_recycles() -> None:
    caps = {spec.name: spec.capabilities for spec in kernel_pools()}
    assert [n for n, c in caps.items() if c.isolated] == ["prefork"]
    assert [n for n, c in caps.items() if c.recycle_children] == ["prefork"]
    assert caps["prefork"].hard_time_limit and caps["prefork"].soft_time_limit
    assert not caps["asyncio"].soft_time_limit


@pytest.mark.timeout(60)
def test_the_entry_point_module_imports_no_pool_implementation() -> None:
    code = (
        "import sys, kernel.std.pools as p; list(p.kernel_pools());"
        "heavy = [m for m in sys.modules if m.startswith(('kernel.std.pools.', "
        " 'multiprocessing', 'asyncio', 'concurrent'))];"
        "print(heavy); sys.exit(bool(heavy))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
