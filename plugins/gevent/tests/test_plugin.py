"""The plugin as users meet it: listed through its entry point, light to import, declaring what
it registers, patching once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kernel.testing import check_distribution
from kernel_gevent import patch

pytestmark = pytest.mark.unit


def test_kernel_lists_the_plugin_as_ok() -> None:
    listed = subprocess.run([sys.executable, "-m", "kernel", "plugins", "list", "--json"],
                            capture_output=True, text=True, check=True).stdout
    [info] = [i for i in json.loads(listed) if i["name"] == "gevent"]
    assert info["status"] == "ok", info["error"]
    assert info["distribution"] == "kernel-gevent"


def test_the_distribution_declares_what_it_registers() -> None:
    check_distribution(Path(__file__).parents[1] / "pyproject.toml")


def test_the_entry_point_module_does_not_import_gevent() -> None:
    code = ("import sys, kernel_gevent.plugin; list(kernel_gevent.plugin.kernel_pools()); "
            "print('gevent' in sys.modules or 'kernel_gevent.pool' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False", "listing plugins must not import gevent"


def test_patching_is_done_once_and_says_what_it_did() -> None:
    first = patch()  # conftest patched already: the same note again, nothing patched twice
    assert patch() == first and first.startswith("gevent ")
    assert "monkey-patched" in first
