"""One source of truth for a plugin distribution: what its ``pyproject.toml`` declares under
``[tool.kernel]`` (the extra that installs it and what it provides) is what its plugin
registers. kernel reads those declarations to tell users what to install; a plugin's own tests
call `check_distribution` so the two never drift::

    def test_the_distribution_declares_what_it_registers():
        check_distribution(Path(__file__).parents[1] / "pyproject.toml")

``[tool.kernel]`` looks like::

    [tool.kernel]
    extra = "redis"                        # kernel[redis] installs this distribution
    # kernel[NAME] installs it as DISTRIBUTION[NAME] (an extra of its own), for these keys:
    other-extras = { opensearch = ["opensearch"] }
    [tool.kernel.provides]                 # kind of record → the keys it registers
    transport = ["redis", "rediss"]
    "result store" = ["redis", "rediss"]
"""

from __future__ import annotations

import sys
from importlib import import_module
from pathlib import Path
from typing import Any

from kernel.plugins import ENTRY_POINT_GROUP, REGISTRATION_HOOKS, PluginManager

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["check_distribution", "declared"]


def declared(pyproject: Path) -> dict[str, Any]:
    """``{"name", "extra", "entry_point", "module", "provides"}`` as `pyproject` declares them;
    AssertionError saying what is missing."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    project = data.get("project", {})
    points = project.get("entry-points", {}).get(ENTRY_POINT_GROUP, {})
    assert len(points) == 1, (f"{pyproject}: declare exactly one entry point in "
                              f"[project.entry-points.\"{ENTRY_POINT_GROUP}\"], found {points}")
    table = data.get("tool", {}).get("kernel", {})
    assert isinstance(table.get("extra"), str) and table["extra"], (
        f"{pyproject}: [tool.kernel] needs extra = \"NAME\", the extra of kernel that installs "
        f"this distribution (kernel[NAME])")
    provides = table.get("provides", {})
    unknown = set(provides) - set(REGISTRATION_HOOKS.values())
    assert not unknown, (f"{pyproject}: [tool.kernel.provides] has kinds kernel does not know: "
                         f"{sorted(unknown)}; use {sorted(REGISTRATION_HOOKS.values())}")
    others = table.get("other-extras", {})
    optional = project.get("optional-dependencies", {})
    assert all(extra in optional for extra in others), (
        f"{pyproject}: each of [tool.kernel] other-extras ({sorted(others)}) must be an extra of "
        f"the distribution itself (kernel[NAME] installs it as DISTRIBUTION[NAME])")
    [(entry, module)] = points.items()
    return {"name": project.get("name"), "extra": table["extra"], "entry_point": entry,
            "module": module, "provides": {k: tuple(sorted(v)) for k, v in provides.items()},
            "other_extras": {k: tuple(sorted(v)) for k, v in others.items()}}


def check_distribution(pyproject: Path) -> None:
    """Fail unless the plugin module named by `pyproject`'s entry point registers exactly what
    its ``[tool.kernel.provides]`` declares."""
    found = declared(pyproject)
    module = import_module(found["module"])
    manager = PluginManager([module], autoload=False)
    registered = manager.keys_of(module.__name__)
    registered.pop("setting", None)  # settings are checked by the App, not listed for hints
    wanted = {k: v for k, v in found["provides"].items() if k != "setting"}
    assert registered == wanted, (
        f"{pyproject}: [tool.kernel.provides] says {wanted}, but the plugin registers "
        f"{registered}; make the declaration say what the plugin registers (kernel uses it to "
        f"tell users which extra to install)")
