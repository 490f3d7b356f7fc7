"""The plugin as kernel sees it: found through its entry point, light to import, and declaring
in pyproject.toml what it registers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kernel.testing import check_distribution

pytestmark = pytest.mark.unit


def test_kernel_lists_the_plugin_as_ok() -> None:
    listed = subprocess.run([sys.executable, "-m", "kernel", "plugins", "list", "--json"],
                            capture_output=True, text=True, check=True).stdout
    [info] = [i for i in json.loads(listed) if i["name"] == "django"]
    assert info["status"] == "ok", info["error"]
    assert info["distribution"] == "kernel-django"


def test_the_distribution_declares_what_it_registers() -> None:
    check_distribution(Path(__file__).parents[1] / "pyproject.toml")


def test_the_entry_point_module_stays_light() -> None:
    code = ("import sys, kernel, kernel_django.plugin; from kernel import App; "
            "App('light', broker='memory://', results='memory://'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', "
            "'django_celery_results') or m in ('kernel_django.results', 'kernel_django.setup')))")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env).stdout
    assert out.strip() == "[]", "an App that does not use Django must not import it"
