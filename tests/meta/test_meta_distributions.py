"""The plugin distributions under plugins/ (and contrib/) are one source of truth: the root
extras, the uv workspace sources and the install hints kernel gives (kernel.distributions)
all agree with what each distribution's pyproject.toml declares; every one builds with the
same backend, shares the root's ruff and mypy configuration, and imports kernel only through
its doors (kernel.plugin, kernel.interfaces; a package's ``testing`` module also
kernel.testing; tests kernel.testing and the public `kernel`)."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from kernel.distributions import DISTRIBUTIONS
from kernel.testing.distribution import declared

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = sorted(p.parent for p in ROOT.glob("plugins/*/pyproject.toml"))
CONTRIB = sorted(p.parent for p in ROOT.glob("contrib/*/pyproject.toml"))


def toml(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def test_there_are_plugins_to_check() -> None:
    assert {p.name for p in PLUGINS} >= {"redis", "amqp"}


@pytest.mark.parametrize("path", PLUGINS + CONTRIB, ids=lambda p: str(p.relative_to(ROOT)))
def test_each_distribution_builds_alike_and_shares_the_root_configuration(path: Path) -> None:
    data = toml(path / "pyproject.toml")
    assert data["build-system"]["build-backend"] == "hatchling.build", (
        f"{path.name}: build with hatchling, as every distribution here does")
    tools = set(data.get("tool", {}))
    assert not tools & {"ruff", "mypy"}, (
        f"{path.name}: drop [tool.ruff] / [tool.mypy]; the root pyproject.toml's apply")
    assert (path / f"kernel_{path.name.replace('-', '_')}" / "py.typed").exists() or any(
        path.glob("kernel_*/py.typed")), f"{path.name}: ship py.typed in the package"


#: root extras that install a third-party package for a kernel feature, not a plugin.
FEATURE_EXTRAS = {"solar": ["ephem>=4.1"],
                  "zstd": ["backports.zstd>=1.0; python_version < '3.14'"],
                  "brotli": ["brotli>=1.1"]}


def test_root_extras_and_uv_sources_name_every_plugin_and_nothing_else() -> None:
    root = toml(ROOT / "pyproject.toml")
    declared_extras = root["project"]["optional-dependencies"]
    assert {k: declared_extras.get(k) for k in FEATURE_EXTRAS} == FEATURE_EXTRAS
    extras = {k: v for k, v in declared_extras.items() if k != "test" and k not in FEATURE_EXTRAS}
    wanted: dict[str, list[str]] = {}
    for p in PLUGINS:
        info = declared(p / "pyproject.toml")
        wanted[info["extra"]] = [info["name"]]
        wanted.update({other: [f"{info['name']}[{other}]"] for other in info["other_extras"]})
    assert extras == wanted, ("the root extras must be exactly one per plugin distribution, "
                              "named by its [tool.kernel] extra, and one per other-extras: "
                              f"want {wanted}")
    sources = {k for k in root["tool"]["uv"]["sources"] if k != "kernel"}
    assert sources == {names[0].split("[")[0] for names in wanted.values()}, (
        "[tool.uv.sources] must list every plugin distribution (workspace = true)")


def test_install_hints_are_what_the_distributions_declare() -> None:
    table = {(d.name, d.extra, d.entry_point, tuple(sorted(d.provides.items())),
              tuple(sorted(d.other_extras.items()))) for d in DISTRIBUTIONS}
    found = set()
    for path in PLUGINS:
        info = declared(path / "pyproject.toml")
        provides = {k: v for k, v in info["provides"].items() if k != "setting"}
        found.add((info["name"], info["extra"], info["entry_point"],
                   tuple(sorted((k, tuple(v)) for k, v in provides.items())),
                   tuple(sorted(info["other_extras"].items()))))
    normalised = {(n, e, p, tuple((k, tuple(sorted(v))) for k, v in prov),
                   tuple((k, tuple(sorted(v))) for k, v in others))
                  for n, e, p, prov, others in table}
    assert normalised == found, ("kernel/distributions.py must list every distribution of "
                                 "plugins/ as its pyproject.toml declares it; the declarations "
                                 f"say: {sorted(found)}")


ALLOWED_IN_PACKAGES = re.compile(r"^kernel\.(plugin|interfaces)(\.\w+)?$")
#: a package's ``testing`` module (servers and fixtures it ships for tests) builds on kernel's.
ALLOWED_IN_TESTING = re.compile(r"^kernel\.(plugin|interfaces|testing)(\.\w+)?$")
ALLOWED_ELSEWHERE = re.compile(r"^kernel(\.plugin|\.interfaces(\.\w+)?|\.testing(\.\w+)?)?$")


def _kernel_imports(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "kernel" or node.module.startswith("kernel."):
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names
                      if a.name == "kernel" or a.name.startswith("kernel.")]
    return found


@pytest.mark.parametrize("path", PLUGINS + CONTRIB, ids=lambda p: str(p.relative_to(ROOT)))
def test_distributions_import_kernel_only_through_its_doors(path: Path) -> None:
    wrong = []
    for source in path.rglob("*.py"):
        parts = source.relative_to(path).with_suffix("").parts
        rule = ALLOWED_ELSEWHERE
        if parts[0].startswith("kernel_"):
            rule = ALLOWED_IN_TESTING if "testing" in parts[1:] else ALLOWED_IN_PACKAGES
        wrong += [f"{source.relative_to(ROOT)}: {module}"
                  for module in _kernel_imports(source.read_text(encoding="utf-8"))
                  if not rule.match(module)]
    assert not wrong, ("import kernel through kernel.plugin and kernel.interfaces (and, in a "
                       "package's testing module, kernel.testing; in tests, kernel.testing "
                       "and the public kernel): " + "; ".join(wrong))


def test_a_key_of_an_other_extra_is_hinted_with_that_extra() -> None:
    """``install kernel[opensearch]`` for opensearch:// (kernel-elasticsearch with its
    opensearch extra), ``install kernel[elasticsearch]`` for elasticsearch://."""
    from kernel.distributions import PROVIDERS

    stores = PROVIDERS["result store"]
    assert stores["opensearch+https"][1:] == ("kernel-elasticsearch", "opensearch")
    assert stores["elasticsearch"][1:] == ("kernel-elasticsearch", "elasticsearch")
