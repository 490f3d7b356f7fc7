"""A plugin distribution that is installed but fails to import (tests/plugins/broken_dist/, whose
entry point raises ImportError("needs libfoo")) is reported and skipped; everything else works.

It is installed for real, with pip, into one throwaway venv per test module layered over the
test interpreter's packages (where kernel is installed), see `tests.venvs.child_venv`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.venvs import child_venv

BROKEN_DIST = Path(__file__).parent / "broken_dist"


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("broken-plugin")
    python = child_venv(root / "venv")
    # a copy, so the build never writes into the repository
    source = shutil.copytree(BROKEN_DIST, root / "broken_dist")
    run([str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation",
         "--no-index", "--quiet", str(source)])
    return python


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kwargs)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done


def in_venv(python: Path, code: str) -> Any:
    """Run `code` in the venv; it prints one JSON document."""
    return json.loads(run([str(python), "-c", textwrap.dedent(code)], cwd=python.parent).stdout)


def test_broken_plugin_is_listed_as_failed_and_std_plugins_load(venv_python: Path) -> None:
    infos = {i["name"]: i for i in in_venv(venv_python, """
        import json, kernel
        print(json.dumps([i.as_dict() for i in kernel.App("x").plugins.infos()]))
    """)}
    broken = infos["broken"]
    assert broken["status"] == "failed"
    assert broken["error"] == "ImportError: needs libfoo"
    assert (broken["distribution"], broken["version"]) == ("kernel-broken-plugin", "0.1.0")
    std = {name: info for name, info in infos.items() if info["distribution"] == "kernel"}
    assert {"serializers", "compression"} <= set(std)
    assert {info["status"] for info in std.values()} == {"ok"}, std


def test_tasks_still_run_next_to_a_broken_plugin(venv_python: Path) -> None:
    outcome = in_venv(venv_python, """
        import json, kernel
        app = kernel.App("x", config={"task_always_eager": True})

        @app.task
        def add(x, y):
            return x + y

        encoded = app.codec.encode([[2], {"y": 3}, {}], "json", "zlib")
        print(json.dumps({"sum": add.delay(2, 40).get(timeout=5),
                          "decoded": app.codec.decode(encoded[0], encoded[1], encoded[3])}))
    """)
    assert outcome == {"sum": 42, "decoded": [[2], {"y": 3}, {}]}


def test_selecting_what_the_broken_plugin_would_provide_explains_why(venv_python: Path) -> None:
    message = in_venv(venv_python, """
        import json, kernel
        from kernel.errors import CapabilityNotFound
        try:
            kernel.App("x", broker="broken://host").transport
        except CapabilityNotFound as exc:
            print(json.dumps(str(exc)))
    """)
    assert message.startswith("no transport for 'broken'; the plugin that provides it failed "
                              "to load: ImportError: needs libfoo")


def test_plugins_list_json_command_shows_the_failure(venv_python: Path) -> None:
    listed = json.loads(run([str(venv_python), "-c",
                             "from kernel.cli import main; main(['plugins', 'list', '--json'])"],
                            cwd=venv_python.parent).stdout)
    broken = {i["name"]: i for i in listed}["broken"]
    assert (broken["status"], broken["error"]) == ("failed", "ImportError: needs libfoo")
