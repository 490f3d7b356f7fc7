"""The plugin as kernel sees it: found through its entry point, light to import, and declaring
in pyproject.toml what it registers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kernel.testing import check_distribution

pytestmark = pytest.mark.unit


def test_kernel_lists_the_plugin_as_ok() -> None:
    listed = subprocess.run([sys.executable, "-m", "kernel", "plugins", "list", "--json"],
                            capture_output=True, text=True, check=True).stdout
    [info] = [i for i in json.loads(listed) if i["name"] == "mongodb"]
    assert info["status"] == "ok", info["error"]
    assert info["distribution"] == "kernel-mongodb"


def test_the_distribution_declares_what_it_registers() -> None:
    check_distribution(Path(__file__).parents[1] / "pyproject.toml")


def test_the_entry_point_module_stays_light() -> None:
    code = ("import sys, kernel_mongodb.plugin; "
            "print(sorted(m for m in ('pymongo', 'bson', 'kernel_mongodb.results') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]", f"listing plugins must not import pymongo or the store: {out}"
