"""The plugin as users meet it: listed through its entry point, light to import, declaring what
it registers, patching once, importing eventlet without its deprecation warning breaking
``-W error``, and warning at start-up about an eventlet known to misbehave."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kernel.testing import check_distribution
from kernel_eventlet import patch
from kernel_eventlet.patching import caveat, release

pytestmark = pytest.mark.unit


def test_kernel_lists_the_plugin_as_ok() -> None:
    listed = subprocess.run([sys.executable, "-m", "kernel", "plugins", "list", "--json"],
                            capture_output=True, text=True, check=True).stdout
    [info] = [i for i in json.loads(listed) if i["name"] == "eventlet"]
    assert info["status"] == "ok", info["error"]
    assert info["distribution"] == "kernel-eventlet"


def test_the_distribution_declares_what_it_registers() -> None:
    check_distribution(Path(__file__).parents[1] / "pyproject.toml")


def test_the_entry_point_module_does_not_import_eventlet() -> None:
    code = ("import sys, kernel_eventlet.plugin; list(kernel_eventlet.plugin.kernel_pools()); "
            "print('eventlet' in sys.modules or 'kernel_eventlet.pool' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False", "listing plugins must not import eventlet"


def test_the_pool_imports_under_warnings_as_errors() -> None:
    # eventlet's own import warns EventletDeprecationWarning, which -W error makes fatal.
    done = subprocess.run([sys.executable, "-W", "error", "-c", "import kernel_eventlet.pool"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_patching_is_done_once_and_says_what_it_did() -> None:
    first = patch()  # conftest patched already: the same note again, nothing patched twice
    assert patch() == first and first.startswith("eventlet ")
    assert "monkey-patched" in first


@pytest.mark.parametrize(("installed", "python", "bad"), [
    ("0.41.3", (3, 11), False), ("0.41.3", (3, 13), False), ("0.34.3", (3, 12), True),
    ("0.36.1", (3, 12), False), ("0.37.0", (3, 13), True), ("0.33.0", (3, 10), True),
    ("0.40.0rc1", (3, 14), True), ("0.41.3", (3, 15), True),
])
def test_a_version_known_to_misbehave_gets_a_warning_naming_the_way_out(
        installed: str, python: tuple[int, int], bad: bool) -> None:
    found = caveat(installed, python)
    assert (found is not None) is bad, found
    if found is not None:
        assert "-P gevent or -P asyncio" in found


def test_release_numbers_compare_as_numbers() -> None:
    assert release("0.41.3") == (0, 41, 3) > release("0.9.0") == (0, 9, 0)
    assert release("0.40.0rc1") == (0, 40, 0)


def test_the_worker_warns_at_start_up_about_a_misbehaving_version(tmp_path: Path) -> None:
    # The start-up path (patch) with an eventlet the table knows is too old: the version the
    # caveat reads is eventlet.__version__, set here to one.
    code = ("import sys, kernel_eventlet.patching as p;"
            "p.import_eventlet().__version__ = '0.30.0';"
            "print(p.patch())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "WARNING: eventlet 0.30.0 is known to misbehave" in done.stdout
    assert "eventlet 0.30.0 is known to misbehave" in done.stderr  # the log line
